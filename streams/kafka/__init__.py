"""The Kafka and Faust side of the stream stages: adapters around the pure stages of
:mod:`perfloop.streams`.

- :mod:`~perfloop.streams.kafka.ingest` reads ``metrics`` with its own consumer group, drives
  the window and detect stages, and checkpoints them (:mod:`~perfloop.streams.kafka.state_reader`
  reads the checkpoints and detection states back; :mod:`~perfloop.streams.kafka.bare_records`
  makes its consumer cheaper per record);
- :mod:`~perfloop.streams.kafka.app` builds the Faust app: the diagnose agents
  (:mod:`~perfloop.streams.kafka.diagnose_agents`) and the loop agent
  (:mod:`~perfloop.streams.kafka.loop_stage`), with batch handling
  (:mod:`~perfloop.streams.kafka.batches`) and a table recovery that loses no event
  (:mod:`~perfloop.streams.kafka.recovery`);
- :mod:`~perfloop.streams.kafka.worker` runs it all as ``perfloop worker``.

Everything else in :mod:`perfloop.streams` knows nothing of Kafka or Faust, and is tested
without a broker.
"""
