"""Builders shared by the enrollment and CLI tests: a tiny real model, LFW people, bad images.

The model is a real Keras Siamese model (compact tower, 64 px, 32-d). Its tower is untrained;
its head is set so that the score falls fast with the L1 distance (identical crops score
sigmoid(4) = 0.98, different faces close to 0), which makes look-alike scores meaningful
without training.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

# Several LFW people with many images each (the deep-funneled tree).
PEOPLE = ("Colin_Powell", "Tony_Blair", "Serena_Williams", "Gerhard_Schroeder")
# 64 px crops are softer than the default model's: a lower blur gate keeps these LFW images.
TEST_FACE_CONFIG = {"min_sharpness": 15.0}
INPUT_SIZE = 64
EMBEDDING_DIM = 32


def build_tiny_model(out_dir: Path) -> Path:
    """Build, save (``save_model_dir``) and return a tiny model directory."""
    from facegate.model.bundle import save_model_dir
    from facegate.model.compact import make_compact_embedding
    from facegate.model.siamese import CLASSIFIER_LAYER, make_siamese
    from facegate.model.tf_runtime import import_keras

    # Seeded: the look-alike assertions depend on where random weights put these faces.
    import_keras().utils.set_random_seed(3)
    siamese = make_siamese(make_compact_embedding(INPUT_SIZE, EMBEDDING_DIM))
    kernel = np.full((EMBEDDING_DIM, 1), -30.0, np.float32)
    siamese.get_layer(CLASSIFIER_LAYER).set_weights([kernel, np.array([4.0], np.float32)])
    save_model_dir(siamese, out_dir, name="tiny-test", arch="compact")
    return out_dir


def person_images(lfw_images: Path, person: str, count: int, start: int = 0) -> list[Path]:
    """``count`` images of one LFW person, from the ``start``-th."""
    files = sorted((lfw_images / person).glob("*.jpg"))[start : start + count]
    assert len(files) == count, f"LFW has too few images of {person}"
    return files


def make_bad_images(folder: Path, lfw_images: Path) -> dict[str, Path]:
    """A text file named .jpg, an image without a face, and a tiny (12 px) image of a face."""
    folder.mkdir(parents=True, exist_ok=True)
    text = folder / "notes.jpg"
    text.write_text("this is not an image\n")
    blank = folder / "wall.png"
    gradient = np.tile(np.linspace(40, 200, 160, dtype=np.uint8)[None, :, None], (120, 1, 3))
    cv2.imwrite(str(blank), gradient)
    tiny = folder / "tiny.png"
    face = cv2.imread(str(person_images(lfw_images, PEOPLE[0], 1)[0]))
    cv2.imwrite(str(tiny), cv2.resize(face, (12, 12), interpolation=cv2.INTER_AREA))
    return {"text": text, "no_face": blank, "tiny": tiny}
