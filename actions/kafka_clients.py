"""The kafka-python names perfloop uses, imported once.

kafka-python 3.0 loads its protocol schemas with a deprecated ``importlib.resources`` call at
import time; that warning (and only at import) is silenced here so that ``-W error`` runs
(``filterwarnings = error`` in the test configuration) can import the executor.
"""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import CommitFailedError, KafkaError, TopicAlreadyExistsError
    from kafka.structs import OffsetAndMetadata, TopicPartition

__all__ = [
    "CommitFailedError",
    "ConsumerRebalanceListener",
    "KafkaAdminClient",
    "KafkaConsumer",
    "KafkaError",
    "KafkaProducer",
    "NewTopic",
    "OffsetAndMetadata",
    "TopicAlreadyExistsError",
    "TopicPartition",
]
