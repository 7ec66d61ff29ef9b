"""The daemon's verifier follows a promoted model: model, pipeline and gallery switch together."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from daemon_site import person

from facegate.config import FacegateConfig
from facegate.daemon.app import build_verifier, follow_registry


def test_verifier_follows_promotion_and_rollback(
    site: FacegateConfig, exact_model_dir: Path, tmp_path: Path, lfw_images: Path
) -> None:
    import cv2

    from facegate.model.bundle import load_model_dir, save_model_dir
    from facegate.scheduler.promote import promote, rollback
    from facegate.storage.registry import open_registry

    old = load_model_dir(exact_model_dir)
    layer = old.siamese.get_layer("classifier")
    kernel, bias = layer.get_weights()
    # A different, still working head. It is as strict as the old one (any visible
    # difference scores near 0) but starts higher: its gallery is re-derived from the stored
    # chips, near-identical to the probe's crop, not bit-identical like the enrollment's.
    layer.set_weights([kernel, bias + 0.5])
    save_model_dir(
        old.siamese,
        tmp_path / "v2",
        name="v2",
        arch="compact",
        template=old.manifest.template,
        thresholds=old.manifest.thresholds,
    )
    registry = open_registry(site.storage)
    verifier = build_verifier(registry, site)
    assert verifier.model.manifest.sha256 == old.manifest.sha256
    probe = cv2.cvtColor(
        cv2.imread(str(person(lfw_images, "Colin_Powell", 1)[0])), cv2.COLOR_BGR2RGB
    )
    before = verifier.judge(probe).verdict

    new = load_model_dir(tmp_path / "v2")
    promote(registry, new, why="test")
    follow_registry(registry, site, verifier)
    assert verifier.model.manifest.sha256 == new.manifest.sha256
    assert verifier.index.model_sha256 == new.manifest.sha256
    after = verifier.judge(probe).verdict
    assert after.verified is not None and after.verified.name == "Ada"
    assert not np.isclose(after.score, before.score)

    rollback(registry, why="test")
    follow_registry(registry, site, verifier)
    assert verifier.model.manifest.sha256 == old.manifest.sha256
    assert verifier.judge(probe).verdict.score == before.score
    registry.close()
