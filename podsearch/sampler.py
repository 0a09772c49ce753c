"""No-duplicate batches whose epoch is as long as the batches really drawn, and the Trainer that uses them.

MultipleNegativesRankingLoss treats every other text of a batch as a negative, so a batch must not hold the same text
twice: sentence-transformers' NoDuplicatesBatchSampler defers a conflicting row to a later batch. When several queries
share an episode, a pass then yields more, smaller batches than its `__len__` (len(dataset) / batch_size) says. The
Trainer sizes the epoch and the learning-rate schedule from `__len__` and stops there, silently dropping the tail;
with drop_last=True the sampler instead re-draws rows it already used. The sampler here plans each epoch's batches
once and reports that plan's length, so every pair is trained once per epoch.
"""
from __future__ import annotations

from sentence_transformers import SentenceTransformerTrainer
from sentence_transformers.base.sampler import NoDuplicatesBatchSampler
from sentence_transformers.sentence_transformer.training_args import BatchSamplers


class ExactLengthNoDuplicatesBatchSampler(NoDuplicatesBatchSampler):
    """NoDuplicatesBatchSampler whose length is the number of batches it yields, and which counts what it yielded.

    Upstream re-seeds its generator from seed + epoch on each pass, so the batches planned for an epoch are the ones
    iteration gives.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._plans: dict[int, list[list[int]]] = {}
        self._planning = False
        self.yielded_examples = 0
        self.yielded_indices: set[int] = set()

    def _plan(self) -> list[list[int]]:
        if self.epoch not in self._plans:
            self._planning = True  # upstream __iter__ calls len(self): give it the upstream estimate meanwhile
            try:
                self._plans[self.epoch] = [list(batch) for batch in super().__iter__()]
            finally:
                self._planning = False
        return self._plans[self.epoch]

    def __len__(self) -> int:
        return super().__len__() if self._planning else len(self._plan())

    def __iter__(self):
        for batch in self._plan():
            self.yielded_examples += len(batch)
            self.yielded_indices.update(batch)
            yield batch

    def batch_sizes(self) -> list[int]:
        """The size of each batch of the current epoch."""
        return [len(batch) for batch in self._plan()]


class ExactLengthTrainer(SentenceTransformerTrainer):
    """SentenceTransformerTrainer whose BatchSamplers.NO_DUPLICATES is the exact-length sampler above. The train
    loader's sampler is kept as `train_batch_sampler`, to report what it yielded (None for other batch samplers)."""

    train_batch_sampler: ExactLengthNoDuplicatesBatchSampler | None = None

    def get_batch_sampler(self, dataset, batch_size, drop_last, valid_label_columns=None, generator=None, seed=0):
        if self.args.batch_sampler != BatchSamplers.NO_DUPLICATES:
            return super().get_batch_sampler(dataset, batch_size, drop_last, valid_label_columns, generator, seed)
        sampler = ExactLengthNoDuplicatesBatchSampler(dataset, batch_size=batch_size, drop_last=drop_last,
                                                      valid_label_columns=valid_label_columns, generator=generator,
                                                      seed=seed)
        if self.train_batch_sampler is None:  # the first one built is the train loader's
            self.train_batch_sampler = sampler
        return sampler
