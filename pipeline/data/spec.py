"""Which data a command trains or studies on, and loading it: collected dataset folders, or a public set.

A :class:`DataSpec` is what ``--data DIR`` (repeatable), ``--mnist DIR`` or ``--signmnist CSV``
name on the command line; :func:`load_data` turns it into one in-memory
:class:`~pipeline.data.load.Dataset`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline.data.load import Dataset, dataset_settings, load_datasets
from pipeline.data.public import load_mnist, load_signmnist
from pipeline.errors import UserError
from pipeline.files import display_path
from pipeline.preprocess.crops import CropSettings

#: ``hands``: dataset folders made by collect; the others: the public 28x28 sets.
KINDS = ("hands", "mnist", "signmnist")


@dataclass(frozen=True)
class DataSpec:
    """``kind`` (one of :data:`KINDS`) and its paths: one or more dataset folders, or the public set's folder or file."""

    kind: str
    paths: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise UserError(f"unknown kind of data {self.kind!r}; choose one of {', '.join(KINDS)}")
        if not self.paths or (self.kind != "hands" and len(self.paths) != 1):
            raise UserError(f"{self.kind}: give exactly one path" if self.kind != "hands" else "name at least one --data folder")

    @property
    def hands(self) -> bool:
        """True for hand crops (augmented in training; explained on the hand)."""
        return self.kind == "hands"

    @property
    def name(self) -> str:
        """What the data is, for titles and output folders: the dataset folders' names joined by ``+``, or the
        public set's kind."""
        return "+".join(Path(p).resolve().name for p in self.paths) if self.hands else self.kind

    def describe(self, absolute: bool = True) -> dict:
        """What a study or a run folder records about the data (absolute paths, so a rerun from another folder
        agrees), or a checkpoint (``absolute=False``: paths as the user gave them, relative where they can be)."""
        paths = [str(Path(p).resolve()) if absolute else display_path(p) for p in self.paths]
        return {"kind": self.kind, "paths": paths}


def check_fill(spec: DataSpec, fill: str | None) -> None:
    """Refuse ``--fill`` in one line for the public sets, which have no large renders to draw again."""
    if fill and not spec.hands:
        raise UserError(f"--fill is for hand crops made by collect, not for {spec.kind}; leave it out")


def fill_settings(spec: DataSpec, fill: str | None) -> CropSettings | None:
    """The crop settings for ``--fill``: the first dataset folder's, with what a crop shows inside its mask set to
    ``fill`` (the others are re-rendered to them); None without a fill (each folder's own)."""
    check_fill(spec, fill)
    return dataset_settings(spec.paths[0], fill=fill) if fill else None


def changed_fill(spec: DataSpec, fill: str | None) -> str | None:
    """``fill``, or None when it is what the first dataset folder was made with (no change, so that a study run with
    ``--fill`` set to the folders' own fill is the one run without it)."""
    check_fill(spec, fill)
    return fill if fill and dataset_settings(spec.paths[0]).fill != fill else None


def load_data(spec: DataSpec, settings: CropSettings | None = None, progress: bool = False) -> Dataset:
    """Load what ``spec`` names; several dataset folders become one dataset (see :func:`load_datasets`)."""
    if spec.kind == "mnist":
        return load_mnist(spec.paths[0])
    if spec.kind == "signmnist":
        return load_signmnist(spec.paths[0])
    return load_datasets(spec.paths, settings, progress)
