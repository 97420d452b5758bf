"""The demo's model versions: four real scikit-learn digit classifiers that genuinely differ.

Each version is what a team might really have shipped, in order:

- v1, a first prototype: Gaussian naive Bayes on the first 150 training digits;
- v2, logistic regression on 300 digits;
- v3, an RBF support-vector machine on the whole training set (the demo's champion);
- v4, the same SVM retrained with every digit also shifted one pixel each way: its accuracy goes
  up a little, it finally reads off-centre digits, and it gets much worse on faint strokes. That
  is the seed's picture: the headline metric improves while a known problem gets worse.

Training is deterministic (fixed data order, no randomness in these estimators), so the curation
script in the repository's ``patterns/`` and ``problem-registry demo`` train the same models. The
loader :func:`load` is what every version registers (``problem_registry.demo.models:load``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from problem_registry.demo.digits import Split, augment_with_shifts, features, load_split

MODEL_NAME = "digits"
LOADER = "problem_registry.demo.models:load"


@dataclass(frozen=True)
class VersionSpec:
    version: str
    note: str  # what changed, as a team would write it in a changelog
    fit: Callable[[Split], Any]


@dataclass(frozen=True)
class TrainedVersion:
    version: str
    note: str
    accuracy: float  # on the held-out split
    artifact: Path  # joblib file
    model: Any


def _naive_bayes(split: Split) -> Any:
    from sklearn.naive_bayes import GaussianNB

    return GaussianNB().fit(split.train_x[:150], split.train_y[:150])


def _logistic(split: Split) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=1e-2, max_iter=5000).fit(split.train_x[:300], split.train_y[:300])


def _svm(split: Split) -> Any:
    from sklearn.svm import SVC

    return SVC(gamma=0.001).fit(split.train_x, split.train_y)


def _svm_shifted(split: Split) -> Any:
    from sklearn.svm import SVC

    return SVC(gamma=0.001).fit(*augment_with_shifts(split.train_x, split.train_y))


VERSIONS: tuple[VersionSpec, ...] = (
    VersionSpec("v1", "prototype: Gaussian naive Bayes on 150 digits", _naive_bayes),
    VersionSpec("v2", "logistic regression on 300 digits", _logistic),
    VersionSpec("v3", "RBF SVM on all 1198 training digits", _svm),
    VersionSpec(
        "v4", "v3 retrained with every digit also shifted one pixel each way", _svm_shifted
    ),
)
CHAMPION = "v3"


def train_versions(
    folder: Path,
    split: Split | None = None,
    *,
    on_trained: Callable[[TrainedVersion], None] | None = None,
) -> list[TrainedVersion]:
    """Fit every version, save each as ``folder/digits-<version>.joblib``, in registration order."""
    import joblib

    split = split or load_split()
    folder.mkdir(parents=True, exist_ok=True)
    trained = []
    for spec in VERSIONS:
        model = spec.fit(split)
        accuracy = float(np.mean(model.predict(split.test_x) == split.test_y))
        artifact = folder / f"{MODEL_NAME}-{spec.version}.joblib"
        joblib.dump(model, artifact)
        trained.append(TrainedVersion(spec.version, spec.note, accuracy, artifact, model))
        if on_trained is not None:
            on_trained(trained[-1])
    return trained


def load(artifact_path: str) -> Callable[[Sequence[Image.Image]], list[str]]:
    """The loader every demo version registers: a batch function over PIL images.

    The artifact is a joblib pickle, which runs code when loaded: the demo only loads the files
    it trained itself, as any loader should only load artifacts its team trusts.
    """
    import joblib

    model = joblib.load(artifact_path)

    def predict(images: Sequence[Image.Image]) -> list[str]:
        if not images:
            return []
        predicted = model.predict(np.stack([features(image) for image in images]))
        return [str(label) for label in predicted]

    return predict
