"""Dataset loading and inspection (TensorFlow-free): layouts on disk -> one in-memory ``DatasetIndex``."""

from training.data.loaders import LAYOUTS, DatasetIndex, Sample, load_dataset

__all__ = ["LAYOUTS", "DatasetIndex", "Sample", "load_dataset"]
