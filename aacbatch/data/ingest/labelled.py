"""What the classification corpora (ESC-50, UrbanSound8K) share: numbered folds and class
ids that must name one class each."""

from __future__ import annotations

from pathlib import Path

from aacbatch.data.manifest import check_tag
from aacbatch.errors import InputError, shown


def find_listing(path: Path, listing: Path, corpus: str) -> tuple[Path, Path]:
    """(listing file, corpus root) of ``path`` — the corpus folder or its listing itself."""
    found = path / listing if path.is_dir() else path
    if not found.is_file():
        raise InputError(f"{shown(path)}: no {listing.as_posix()} found: is this an {corpus} folder?")
    return found, found.parent.parent if path.is_file() else path


def fold_split(text: str, listing: Path, line: int) -> str:
    """A ``fold`` field (a positive integer) → its source split name ``fold<N>``."""
    fold = text.strip()
    if not fold.isdigit() or int(fold) < 1:
        raise InputError(f"{shown(listing)} line {line}: fold {text!r} is not a positive whole number")
    return f"fold{int(fold)}"


class LabelIndex:
    """Class id → class name as a listing gives them, checked to agree on every row."""

    def __init__(self, listing: Path, id_column: str, name_column: str):
        self.listing, self.id_column, self.name_column = listing, id_column, name_column
        self.names: dict[int, tuple[str, int]] = {}  # id → (name, first line)

    def add(self, class_id: str, name: str, line: int) -> str:
        """Record one row's class; returns its name. A class id with two names, or a name
        with two ids, is refused naming both lines."""
        where = f"{shown(self.listing)} line {line}"
        if not class_id.strip().isdigit():
            raise InputError(f"{where}: {self.id_column} {class_id!r} is not a whole number >= 0")
        number, name = int(class_id), name.strip()
        if not name:
            raise InputError(f"{where}: empty {self.name_column}")
        check_tag(name, f"{where}: {self.name_column}")
        known = self.names.get(number)
        if known is None:
            other = next((n for n, (text, _) in self.names.items() if text == name), None)
            if other is not None:
                raise InputError(f"{where}: {self.name_column} {name!r} has {self.id_column} {number} here but "
                                 f"{other} on line {self.names[other][1]}: give each class one id")
            self.names[number] = (name, line)
        elif known[0] != name:
            raise InputError(f"{where}: {self.id_column} {number} is {name!r} here but {known[0]!r} on line "
                             f"{known[1]}: give each class one name")
        return name

    def ordered(self) -> list[str]:
        """Class names in id order: the dataset's label vocabulary."""
        return [self.names[n][0] for n in sorted(self.names)]
