"""A label table the server holds (``--labels server``, issue 20): labels by sample id, committed
once per session as a Poseidon Merkle tree, computed exactly as circuits/labels.circom does.

The leaf at position ``id`` is the label of sample ``id`` (a class index); positions past the
table hold ``classes``, a value no one-hot row encodes, so no proof can take a label from them.
A node is ``Poseidon(left, right)``. The commitment published in the session is
``PoseidonChain([salt, tag("labels", [(2^depth, depth)]), root])``: the random salt hides the
root (and so the labels); ServerStep proves each row's label is the leaf at the row's id under
that commitment.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .commit import native, poseidon_chain, tag
from .errors import InputError


def table_depth(size: int) -> int:
    """Depth of the tree over ``size`` labels (at least 1)."""
    if size < 1:
        raise InputError("a label table needs at least one label")
    return max(1, (size - 1).bit_length())


def table_tag(depth: int) -> int:
    return tag("labels", [(1 << depth, depth)])


class LabelTable:
    """Labels by sample id, their Merkle tree and its salted commitment."""

    def __init__(self, labels: torch.Tensor, classes: int, salt: int):
        labels = torch.as_tensor(labels, dtype=torch.int64).reshape(-1)
        if labels.numel() == 0:
            raise InputError("a label table needs at least one label")
        if int(labels.min()) < 0 or int(labels.max()) >= classes:
            raise InputError(f"table labels must lie in [0, {classes})")
        self.labels, self.classes, self.salt = labels, classes, int(salt)
        self.depth = table_depth(labels.numel())
        leaves = labels.tolist() + [classes] * ((1 << self.depth) - labels.numel())
        hash2 = native().hash
        self.levels: list[list[int]] = [leaves]
        while len(self.levels[-1]) > 1:
            below = self.levels[-1]
            self.levels.append([hash2([below[i], below[i + 1]]) for i in range(0, len(below), 2)])

    @property
    def root(self) -> int:
        return self.levels[-1][0]

    @property
    def commitment(self) -> int:
        return poseidon_chain([self.salt, table_tag(self.depth), self.root])

    def check_ids(self, ids: torch.Tensor) -> None:
        ids = torch.as_tensor(ids)
        if ids.dim() != 1 or (ids.numel() and (int(ids.min()) < 0
                                               or int(ids.max()) >= self.labels.numel())):
            raise InputError(f"sample ids must be a row of integers in [0, {self.labels.numel()})"
                             f" (the label table's rows)")

    def labels_at(self, ids: torch.Tensor) -> torch.Tensor:
        self.check_ids(ids)
        return self.labels[torch.as_tensor(ids, dtype=torch.int64)]

    def siblings(self, ids: torch.Tensor) -> list[list[int]]:
        """Each id's Merkle path: the sibling at every level, leaf level first."""
        self.check_ids(ids)
        return [[self.levels[level][(int(i) >> level) ^ 1] for level in range(self.depth)]
                for i in ids]


def label_mode(text: str) -> str:
    """Who holds a session's labels (``--labels`` of demo and train), checked where the text
    enters: 'client' or 'server'."""
    if text not in ("client", "server"):
        raise InputError(f"--labels {text!r}: client (the client sends the labels) or server "
                         "(the server holds them; the client sends sample ids)")
    return text


def held_labels(source: str) -> torch.Tensor:
    """The labels a server holds by sample id (``serve --labels``): ``digits``, the embedded
    digits' 1,797 labels in their order (a training row's id is its row in the digits); or a
    file like the client's data options, ``FILE.npz`` (array ``y``) or ``FILE.csv`` (the class
    index in the last column), the label of sample id i in row i."""
    if source == "digits":
        from .refnet import load_digits_split

        _, train, _, test = load_digits_split()
        return torch.cat([train, test])
    from .model.torch_io import load_dataset

    labels = load_dataset(source).y
    if labels.numel() == 0:
        raise InputError(f"the label file {source} holds no labels")
    return labels


@dataclass(frozen=True)
class SampleIds:
    """What a client names its batch's rows by under --labels server (instead of labels): the
    rows' sample ids, committed in ``depth`` bits each (the table's depth)."""
    ids: torch.Tensor
    depth: int

    def __post_init__(self):
        ids = torch.as_tensor(self.ids)
        if ids.dim() != 1 or (ids.numel() and (int(ids.min()) < 0
                                               or int(ids.max()) >= 1 << self.depth)):
            raise InputError(f"sample ids must be a row of integers in [0, 2^{self.depth})")
