"""A model directory on disk: ``model.keras`` (the whole Siamese model) and ``manifest.json``.

Saving writes both into a temporary sibling directory and renames it into place, so a reader
never sees half a model. Loading checks the weights file's sha256 against the manifest before
Keras reads a byte of it, then deserialises with ``safe_mode=True`` (no code from the file).

``weights_dtype="float16"`` stores every float32 weight as float16 inside the ``.keras`` file
(half the size); Keras casts them back to the float32 variables on load.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import io
import json
import logging
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from facegate.errors import ModelError
from facegate.model.embedder import Embedder
from facegate.model.manifest import (
    FULL,
    MANIFEST_NAME,
    VARIANTS,
    Manifest,
    Preprocessing,
    Thresholds,
    Variant,
)
from facegate.model.scoring import SiameseHead

logger = logging.getLogger(__name__)

WEIGHTS_NAME = "model.keras"
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "default"
Template = tuple[tuple[float, float], ...]

# Members of a Keras 3 ``.keras`` zip (keras/src/saving/saving_lib.py).
_CONFIG_MEMBER = "config.json"
_WEIGHTS_MEMBER = "model.weights.h5"
_HASH_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class LoadedModel:
    """A verified, deserialised model directory, ready to embed and score."""

    manifest: Manifest
    path: Path
    siamese: Any
    head: SiameseHead
    embedder: Embedder
    runtime: str = "tensorflow"
    quantization: str | None = None
    tflite_sha256: str | None = None
    # FULL, or the name of the manifest variant served (its head, thresholds and metrics are
    # then in ``manifest``; ``manifest.sha256`` still names the weights, i.e. the version).
    variant: str = FULL
    # What the loader does to the weights' output beyond running them ("" for nothing): the
    # variant on TensorFlow, the LiteRT embedder's mirror averaging and scaling on LiteRT.
    space_tag: str = ""

    @property
    def space(self) -> str:
        """Embedding space (64 hex): manifest sha256 on TensorFlow, loaded .tflite's on LiteRT,
        hashed with ``space_tag`` where the same file is run another way."""
        base = self.tflite_sha256 or self.manifest.sha256
        if not self.space_tag:
            return base
        return hashlib.sha256(f"{base}:{self.space_tag}".encode()).hexdigest()

    @property
    def label(self) -> str:
        """Name for logs: ``<sha12>`` or ``<sha12> (litert int8 <tflite sha12>)``, with
        `` fast`` after the hash when a variant is served."""
        sha = self.manifest.sha256[:12]
        if self.variant != FULL:
            sha = f"{sha} {self.variant}"
        if self.tflite_sha256 is None:
            return sha
        return f"{sha} (litert {self.quantization} {self.tflite_sha256[:12]})"

    @property
    def input_size(self) -> int:
        """Side S of the aligned crops the model takes, in pixels."""
        return self.manifest.input_size

    def embed(self, crops: np.ndarray) -> np.ndarray:
        """(N, S, S, 3) uint8 RGB aligned crops -> (N, D) float32 embeddings."""
        return self.embedder.embed(crops)

    def score(self, a_crop: np.ndarray, b_crop: np.ndarray) -> float:
        """Siamese score of two (S, S, 3) uint8 crops: probability in [0, 1], higher = same."""
        emb = self.embed(np.stack([np.asarray(a_crop), np.asarray(b_crop)]))
        return float(self.head.pair_scores(emb[0:1], emb[1:2])[0])


def _strip_and_cast(keras_file: Path, out: Path, weights_dtype: str) -> None:
    """Copy a ``.keras`` zip without optimizer state, casting float32 weights if asked."""
    import h5py

    with zipfile.ZipFile(keras_file) as zin:
        config = json.loads(zin.read(_CONFIG_MEMBER))
        # A model directory is for inference and fine-tuning from scratch optimizers: Adam's
        # two moment slots would triple the file for nothing.
        config.pop("compile_config", None)
        src = h5py.File(io.BytesIO(zin.read(_WEIGHTS_MEMBER)), "r")
        buf = io.BytesIO()
        with h5py.File(buf, "w") as dst:
            for key, value in src.attrs.items():
                dst.attrs[key] = value

            def copy(name: str, obj: Any) -> None:
                if name == "optimizer" or name.startswith("optimizer/"):
                    return
                if isinstance(obj, h5py.Dataset):
                    data = obj[()]
                    if weights_dtype == "float16" and data.dtype == np.float32:
                        data = data.astype(np.float16)
                    target = dst.create_dataset(name, data=data)
                else:
                    target = dst.require_group(name)
                for key, value in obj.attrs.items():
                    target.attrs[key] = value

            src.visititems(copy)
        src.close()
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as zout:
            for member in zin.namelist():
                if member == _CONFIG_MEMBER:
                    zout.writestr(member, json.dumps(config))
                elif member == _WEIGHTS_MEMBER:
                    zout.writestr(member, buf.getvalue())
                else:
                    zout.writestr(member, zin.read(member))


def save_model_dir(
    siamese: Any,
    out_dir: Path,
    *,
    name: str,
    arch: str,
    template: Template | None = None,
    preprocessing: Preprocessing | None = None,
    thresholds: Thresholds | None = None,
    training: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    weights_dtype: Literal["float32", "float16"] = "float32",
    variants: dict[str, Variant] | None = None,
) -> Manifest:
    """Write ``siamese`` and its manifest to ``out_dir`` atomically; return the manifest.

    ``template`` and ``preprocessing`` default to the architecture's (``ARCHITECTURES``);
    an existing ``out_dir`` is replaced as a whole.
    """
    from facegate.model.architectures import get_architecture
    from facegate.model.siamese import CLASSIFIER_LAYER, embedding_tower

    if weights_dtype not in ("float32", "float16"):
        raise ModelError(f"weights_dtype must be float32 or float16, not {weights_dtype!r}")
    out_dir = Path(out_dir)
    try:
        tower = embedding_tower(siamese)
        siamese.get_layer(CLASSIFIER_LAYER)
    except ValueError as err:
        raise ModelError(f"not a Siamese model: {_one_line(err)}") from err
    input_size = int(tower.input_shape[1])
    spec = get_architecture(arch)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        raw = tmp / "raw.keras"
        siamese.save(raw)
        weights = tmp / WEIGHTS_NAME
        _strip_and_cast(raw, weights, weights_dtype)
        raw.unlink()
        manifest = Manifest(
            name=name,
            arch=arch,
            input_size=input_size,
            embedding_dim=int(tower.output_shape[-1]),
            template=tuple(template or spec.default_template(input_size)),
            weights_file=WEIGHTS_NAME,
            sha256=sha256_file(weights),
            preprocessing=preprocessing or spec.preprocessing,
            thresholds=thresholds or Thresholds(),
            training={**(training or {}), "weights_dtype": weights_dtype},
            metrics=dict(metrics or {}),
            variants=dict(variants or {}),
        )
        (tmp / MANIFEST_NAME).write_text(manifest.to_json(), encoding="utf-8")
        os.chmod(tmp, 0o755)
        _replace_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("saved model %s (%s) to %s", name, arch, out_dir)
    return manifest


def _replace_dir(new: Path, target: Path) -> None:
    """Rename ``new`` to ``target``; an existing ``target`` is moved aside, then removed."""
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
        os.rename(target, old / target.name)
    os.rename(new, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def resolve_model_dir(path: Path | None) -> Path:
    """``path``, or the packaged default model; a ModelError when that is not installed."""
    if path is not None:
        return Path(path)
    if not (DEFAULT_MODEL_DIR / MANIFEST_NAME).is_file():
        raise ModelError(
            f"no default model is installed ({DEFAULT_MODEL_DIR} has no {MANIFEST_NAME}); "
            "pass --model DIR or set model.path in the config"
        )
    return DEFAULT_MODEL_DIR


def verify_weights(model_dir: Path, manifest: Manifest) -> Path:
    """Check the weights file named by the manifest against its sha256; return its path."""
    if Path(manifest.weights_file).name != manifest.weights_file:
        raise ModelError(f"{model_dir}: weights_file must be a plain file name")
    weights = Path(model_dir) / manifest.weights_file
    try:
        digest = sha256_file(weights)
    except OSError as err:
        raise ModelError(f"{weights}: cannot read weights: {err.strerror or err}") from err
    if digest != manifest.sha256.lower():
        raise ModelError(
            f"{weights}: sha256 {digest[:16]}... does not match the manifest's "
            f"{manifest.sha256[:16]}...: the file is corrupt or was modified; refusing to load it"
        )
    return weights


RUNTIMES = ("auto", "tensorflow", "litert")
EDGE_EXTRA = "facegate[edge]"


def resolve_runtime(runtime: str, manifest: Manifest) -> str:
    """``tensorflow`` or ``litert`` for a configured runtime and model, checked to be installed.

    ``auto`` is LiteRT when the model directory carries a LiteRT export (``manifest.tflite``)
    and ai-edge-litert is installed: for the packaged model it is as accurate, several times
    faster per face and starts in a fraction of the time and memory. Otherwise TensorFlow when
    installed, else a one-line ModelError. An explicit runtime that is not installed is a
    one-line ModelError naming the extra to install.
    """
    from facegate.model.tf_runtime import require_tensorflow, tensorflow_available

    if runtime not in RUNTIMES:
        raise ModelError(f"unknown runtime {runtime!r} (use {', '.join(RUNTIMES)})")
    if runtime == "auto":
        if manifest.tflite and _litert_available():
            return "litert"
        if tensorflow_available():
            return "tensorflow"
        raise ModelError(
            f"model {manifest.name} has no LiteRT export and TensorFlow is not installed: "
            "export it where TensorFlow is installed (facegate model export --format tflite) "
            "or install TensorFlow"
        )
    if runtime == "tensorflow":
        require_tensorflow('model.runtime = "tensorflow"')
    elif not _litert_available():
        raise ModelError(
            f'model.runtime = "litert" needs ai-edge-litert, which is not installed: '
            f"pip install '{EDGE_EXTRA}'"
        )
    return runtime


def _litert_available() -> bool:
    return importlib.util.find_spec("ai_edge_litert") is not None


def select_variant(model_dir: Path, manifest: Manifest, variant: str) -> Variant | None:
    """The manifest's ``variant`` (None for FULL); a one-line ModelError when it has none."""
    if variant not in VARIANTS:
        raise ModelError(f"unknown model variant {variant!r} (use {', '.join(VARIANTS)})")
    if variant == FULL:
        return None
    if variant not in manifest.variants:
        have = ", ".join([FULL, *sorted(manifest.variants)])
        raise ModelError(
            f"model {manifest.name} ({model_dir}) has no {variant} variant (it has: {have}); "
            f'set model.variant = "{FULL}"'
        )
    return manifest.variants[variant]


def as_variant(manifest: Manifest, variant: Variant) -> Manifest:
    """``manifest`` with ``variant``'s thresholds and metrics in place of its own."""
    return dataclasses.replace(manifest, thresholds=variant.thresholds, metrics=variant.metrics)


def load_model_dir(
    path: Path | None = None, runtime: str = "tensorflow", variant: str = FULL
) -> LoadedModel:
    """Verify and load a model directory (None: the packaged default) for ``runtime``
    (``auto``, ``tensorflow`` or ``litert``, see ``resolve_runtime``), serving ``variant``
    (FULL or a name in the manifest's ``variants``)."""
    model_dir = resolve_model_dir(path)
    manifest = Manifest.read(model_dir)
    chosen = select_variant(model_dir, manifest, variant)
    runtime = resolve_runtime(runtime, manifest)
    if runtime == "litert":
        return _load_litert(Path(model_dir), manifest, variant, chosen)
    weights = verify_weights(model_dir, manifest)
    # Importing the registry imports every architecture module, which registers its custom
    # layers (L1Dist, L2Normalize, ...) with Keras: safe mode only builds registered classes.
    from facegate.model import architectures, layers  # noqa: F401
    from facegate.model.embedder import TensorFlowEmbedder
    from facegate.model.siamese import CLASSIFIER_LAYER, embedding_tower
    from facegate.model.tf_runtime import import_keras

    keras = import_keras()
    try:
        siamese = keras.saving.load_model(weights, compile=False, safe_mode=True)
        tower = embedding_tower(siamese)
        kernel, bias = siamese.get_layer(CLASSIFIER_LAYER).get_weights()
    except Exception as err:
        # Keras raises many types (ValueError, TypeError, OSError, KeyError) for a bad file.
        raise ModelError(f"{weights}: cannot load the model: {_one_line(err)}") from err
    if int(tower.input_shape[1]) != manifest.input_size:
        raise ModelError(
            f"{weights}: input size {tower.input_shape[1]} != manifest {manifest.input_size}"
        )
    if int(tower.output_shape[-1]) != manifest.embedding_dim:
        raise ModelError(
            f"{weights}: embedding dim {tower.output_shape[-1]} != manifest "
            f"{manifest.embedding_dim}"
        )
    head = SiameseHead(kernel=np.asarray(kernel, np.float32).reshape(-1), bias=float(bias[0]))
    logger.info(
        "loaded model %s (%s, %s) from %s", manifest.name, manifest.arch, variant, model_dir
    )
    full = LoadedModel(
        manifest=manifest,
        path=Path(model_dir),
        siamese=siamese,
        head=head,
        embedder=TensorFlowEmbedder(tower, manifest.preprocessing),
    )
    return serve_variant(full, variant)


def serve_variant(model: LoadedModel, variant: str) -> LoadedModel:
    """A TensorFlow-loaded full ``model`` serving ``variant`` (``model`` itself for FULL),
    without reading the file again: the variant's tower is a view of the same layers."""
    from facegate.model.embedder import TensorFlowEmbedder
    from facegate.model.siamese import embedding_tower

    chosen = select_variant(model.path, model.manifest, variant)
    if chosen is None:
        return model
    if model.siamese is None or model.variant != FULL:
        raise ModelError(f"{model.label}: only a full model loaded on TensorFlow has variants")
    tower = _variant_tower(embedding_tower(model.siamese), chosen, model.path, variant)
    manifest = as_variant(model.manifest, chosen)
    return dataclasses.replace(
        model,
        manifest=manifest,
        head=_variant_head(model.path, model.manifest, variant, chosen),
        embedder=TensorFlowEmbedder(tower, manifest.preprocessing),
        variant=variant,
        space_tag=variant,
    )


def _variant_head(model_dir: Path, manifest: Manifest, name: str, variant: Variant) -> SiameseHead:
    kernel = np.asarray(variant.head_kernel, np.float32)
    if kernel.shape != (manifest.embedding_dim,):
        raise ModelError(
            f"{model_dir}: the {name} variant's head kernel {kernel.shape} != "
            f"({manifest.embedding_dim},)"
        )
    return SiameseHead(kernel=kernel, bias=float(variant.head_bias))


def _variant_tower(tower: Any, variant: Variant, model_dir: Path, name: str) -> Any:
    """The Keras tower ``variant`` runs: a flip-averaging wrapper without its mirror."""
    from facegate.model.resnet import is_flip_average, plain_view

    if variant.flip_average == is_flip_average(tower):
        return tower
    if variant.flip_average:
        raise ModelError(f"{model_dir}: the {name} variant averages mirrors; the tower cannot")
    return plain_view(tower)


# Which export the LiteRT runtime loads when a directory holds several: accuracy first.
_LITERT_PREFERENCE = ("float16", "none", "int8")


def _load_litert(
    model_dir: Path, manifest: Manifest, served: str = FULL, variant: Variant | None = None
) -> LoadedModel:
    """Load a model directory's LiteRT export (no TensorFlow): sha256-checked, head included.

    A ``flip_average`` export holds the plain tower: the full model averages each crop with
    its mirror on it, the fast variant runs it once. An older export, with the mirror inside
    the graph, serves the full model only."""
    from facegate.model.litert import LiteRTEmbedder

    exports = manifest.tflite or {}
    chosen = [q for q in _LITERT_PREFERENCE if q in exports] or sorted(exports)
    if not chosen:
        raise ModelError(
            f"{model_dir}: no LiteRT export: run facegate model export --format tflite "
            "(where TensorFlow is installed), or run it on TensorFlow"
        )
    quantization = chosen[0]
    entry = exports[quantization]
    name = str(entry["file"])
    if Path(name).name != name:
        raise ModelError(f"{model_dir}: tflite file must be a plain file name")
    tflite = model_dir / name
    try:
        digest = sha256_file(tflite)
    except OSError as err:
        raise ModelError(f"{tflite}: cannot read the LiteRT model: {err.strerror or err}") from err
    if digest != str(entry["sha256"]).lower():
        raise ModelError(
            f"{tflite}: sha256 {digest[:16]}... does not match the manifest's "
            f"{str(entry['sha256'])[:16]}...: the file is corrupt or was modified; refusing it"
        )
    try:
        kernel = np.asarray(entry["head_kernel"], np.float32).reshape(-1)
        bias = float(entry["head_bias"])
    except (KeyError, TypeError, ValueError) as err:
        raise ModelError(f"{model_dir}: tflite.{quantization} has no valid head: {err!r}") from err
    if kernel.shape != (manifest.embedding_dim,):
        raise ModelError(f"{model_dir}: head kernel {kernel.shape} != ({manifest.embedding_dim},)")
    head = SiameseHead(kernel=kernel, bias=bias)
    # True: the file is the plain tower of a flip-averaging model; the embedder mirrors.
    mirror_outside = bool(entry.get("flip_average", False))
    l2_normalize = bool(entry.get("l2_normalize", False))
    flip_average = mirror_outside
    if variant is not None:
        if not mirror_outside:
            raise ModelError(
                f"{tflite}: this export cannot serve the {served} variant (the mirror is inside "
                "its graph): export it again (facegate model export --format tflite)"
            )
        flip_average = variant.flip_average
        head = _variant_head(model_dir, manifest, served, variant)
        manifest = as_variant(manifest, variant)
    embedder = LiteRTEmbedder(
        tflite,
        manifest.preprocessing,
        manifest.input_size,
        manifest.embedding_dim,
        flip_average=flip_average,
        l2_normalize=l2_normalize,
    )
    logger.info(
        "loaded LiteRT model %s (%s, %s) from %s", manifest.name, quantization, served, tflite
    )
    return LoadedModel(
        manifest=manifest,
        path=model_dir,
        siamese=None,
        head=head,
        embedder=embedder,
        runtime="litert",
        quantization=quantization,
        tflite_sha256=digest,
        variant=served,
        space_tag=f"flip={flip_average:d},l2={l2_normalize:d}" if mirror_outside else "",
    )


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text[:300] if text else type(err).__name__
