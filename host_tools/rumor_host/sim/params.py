"""What one simulation run is asked to do (SimParams) and the checks on it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class SimParams:
    nodes: int = 100
    topology: str = "rgg"
    degree: float = 10.0
    loss: float = 0.0
    radio: str = "espnow"
    sf: int = 7
    messages: int = 100
    seed: int = 1
    payload: int = 32  # bytes of each published payload
    interval_ms: float | None = None  # between publishes (None: 100 ms ESP-NOW, 200 airtimes LoRa)
    settle_ms: int | None = None  # simulated after the last publish (None: radio default)
    start_ms: int = 1000  # first publish
    churn: float = 0.0  # fraction of nodes that reboot (lose RAM) once during the traffic
    downtime_ms: int = 2000  # how long a rebooting node is off
    partition_ms: int = 0  # links across x = 0.5 are down from partition_start_ms until then
    partition_start_ms: int = 0  # when the partition begins (0: at the start)
    source: int | None = None  # every message from this node (None: random nodes)
    # frames a node's radio holds waiting for the air; a frame handed over when
    # it is full is dropped, as ESP-NOW's driver refuses a send when its TX
    # buffers are full (0: no limit)
    txq_limit: int = 0
    # LoRa channel access (lora_access.py): listen before talk with the LoRa
    # adapter's CAD and backoff (after cad_tries busy CADs in a row a frame
    # goes anyway), and capture: a frame a receiver locked on first survives
    # an overlapping one at least capture_db weaker (capture off: any overlap
    # loses both).  ESP-NOW keeps its CSMA/CA and ignores these.
    cad: bool = True
    cad_tries: int = 6
    capture: bool = True
    capture_db: float = 6.0

    def check(self) -> None:
        if self.nodes < 2:
            raise ValueError(f"nodes must be >= 2, got {self.nodes}")
        if not 0.0 <= self.loss < 1.0:
            raise ValueError(f"loss must be in [0, 1), got {self.loss}")
        if self.messages < 1:
            raise ValueError(f"messages must be >= 1, got {self.messages}")
        if not 0 <= self.payload <= 200:
            raise ValueError(f"payload must be 0..200 bytes, got {self.payload}")
        if not 0.0 <= self.churn <= 1.0:
            raise ValueError(f"churn must be a fraction in [0, 1], got {self.churn}")
        if self.txq_limit < 0:
            raise ValueError(f"txq_limit must be >= 0, got {self.txq_limit}")
        if not 1 <= self.cad_tries <= 100:
            raise ValueError(f"cad_tries must be 1..100, got {self.cad_tries}")
        if not 0.0 <= self.capture_db <= 60.0:
            raise ValueError(f"capture_db must be 0..60 dB, got {self.capture_db}")
        if self.source is not None and not 0 <= self.source < self.nodes:
            raise ValueError(f"source must be a node index 0..{self.nodes - 1}, got {self.source}")
        if self.partition_ms < 0 or self.downtime_ms < 0 or self.start_ms < 0:
            raise ValueError("times must be >= 0")
        if self.partition_start_ms < 0 or (
                self.partition_start_ms and self.partition_start_ms >= self.partition_ms):
            raise ValueError(f"partition_start_ms must be in [0, partition_ms), got "
                             f"{self.partition_start_ms} (partition_ms {self.partition_ms})")
