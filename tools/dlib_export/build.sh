#!/bin/sh
# Build dlib_to_xml against Debian's libdlib-dev (apt-get install libdlib-dev g++ pkg-config).
# A developer tool only: facegate never needs dlib at run time.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-"$here/build"}
mkdir -p "$out"
# Link libdlib alone: pkg-config's list names libblas/liblapack .so files that the runtime
# packages do not install, and this program needs neither.
g++ -O2 -std=c++17 -o "$out/dlib_to_xml" "$here/dlib_to_xml.cpp" -ldlib -lpthread
echo "built $out/dlib_to_xml"
