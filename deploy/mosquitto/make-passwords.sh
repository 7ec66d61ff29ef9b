#!/bin/sh
# Create the broker's password file for facegate, the doorbell and Home Assistant, with a
# fresh random password each, and the facegate credential file for systemd.
#
#   sudo sh deploy/mosquitto/make-passwords.sh [PASSWD_FILE] [CREDENTIAL_FILE]
#
# Defaults: /etc/mosquitto/facegate.passwd and /etc/facegate/mqtt_password. The doorbell's
# and Home Assistant's passwords are printed once: put them in those devices' settings.
# An existing password file is left alone (change one password with
# `mosquitto_passwd -b FILE USER PASSWORD`).
set -eu
passwd_file=${1:-/etc/mosquitto/facegate.passwd}
credential=${2:-/etc/facegate/mqtt_password}

if [ -e "$passwd_file" ]; then
  echo "$passwd_file exists; not touching it" >&2
  exit 1
fi
umask 077
mkdir -p "$(dirname "$passwd_file")" "$(dirname "$credential")"
random_password() { head -c 18 /dev/urandom | base64 | tr -d '/+='; }

facegate_pw=$(random_password)
doorbell_pw=$(random_password)
ha_pw=$(random_password)
: > "$passwd_file"
mosquitto_passwd -b "$passwd_file" facegate "$facegate_pw"
mosquitto_passwd -b "$passwd_file" doorbell "$doorbell_pw"
mosquitto_passwd -b "$passwd_file" homeassistant "$ha_pw"
printf '%s\n' "$facegate_pw" > "$credential"
chmod 600 "$credential"
# mosquitto drops to its own user after reading its configuration.
if id mosquitto >/dev/null 2>&1; then
  chown mosquitto: "$passwd_file"
fi
chmod 600 "$passwd_file"
echo "wrote $passwd_file and $credential"
echo "doorbell password: $doorbell_pw"
echo "homeassistant password: $ha_pw"
