"""MQTT sink benchmark against a local Mosquitto (started here on a free 127.0.0.1 port).

- Throughput: predictions/s the sink delivers at QoS 0 and 1 (one JSON message per record, publish =
  "all", batches of 100 records handed to ``process`` as fast as it returns), counted at a subscriber
  in another process: records / (last arrival - first ``process`` call).
- Latency: records paced at ``--rate`` per second, one per batch; time from the record's creation to its
  arrival at a subscriber in the same process (same clock), p50/p99.

    python benchmarks/bench_mqtt.py [--records N] [--rate R] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiomqtt
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from mqtt_broker import Broker, find_mosquitto

from nodes.mqtt.sink import MqttParams, MqttSink
from nodes.sources.predictions import make_predictions
from pipeline.config import build_params
from pipeline.message import predictions_message
from pipeline.node import NodeContext

TOPIC = "bench/prediction"


def make_sink(broker: Broker, qos: int, window: int, buffer_size: int) -> MqttSink:
    table = {
        "host": broker.host,
        "port": broker.port,
        "prefix": "bench",
        "publish": "all",
        "qos": qos,
        "window": window,
        "buffer_size": buffer_size,
        "status_period_s": 0,
        "flush_timeout_s": 120,
    }
    return MqttSink("bench", build_params(MqttParams, table, "bench"), NodeContext(name="bench", graph="bench"))


def _subscriber(host: str, port: int, qos: int, n: int, ready: Any, out: Any) -> None:
    async def main() -> None:
        seen = 0
        async with aiomqtt.Client(host, port, max_queued_incoming_messages=0) as sub:
            await sub.subscribe(TOPIC, qos=qos)
            ready.set()
            async for _ in sub.messages:
                seen += 1
                if seen >= n:
                    out.put(time.time())
                    return

    asyncio.run(main())


async def _until_connected(sink: MqttSink) -> None:
    while not sink.connected:  # noqa: ASYNC110 - the publisher keeps a flag, not an event
        await asyncio.sleep(0.01)


async def _drive(sink: MqttSink, records: int, batch: int) -> tuple[float, float]:
    await sink.start()
    await _until_connected(sink)
    recs = make_predictions(np.arange(records) % 10, np.arange(records) * 1000, classes=10, score=0.5)
    t0 = time.time()
    for i in range(0, records, batch):
        await sink.process(predictions_message(recs[i : i + batch]))
        await asyncio.sleep(0)  # let the publisher task run, as the graph's other nodes would
    t_enqueued = time.time()
    await sink.flush()
    await sink.stop()
    return t0, t_enqueued


def throughput(broker: Broker, qos: int, records: int, window: int) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    ready, out = ctx.Event(), ctx.Queue()
    proc = ctx.Process(target=_subscriber, args=(broker.host, broker.port, qos, records, ready, out))
    proc.start()
    if not ready.wait(30):
        msg = "subscriber did not start"
        raise SystemExit(msg)
    sink = make_sink(broker, qos, window, buffer_size=records + 1)
    t0, _ = asyncio.run(_drive(sink, records, batch=100))
    t_last = out.get(timeout=120)
    proc.join(10)
    r = sink.results()
    assert r["mqtt_published"] == records, r
    assert r["mqtt_dropped"] == 0, r
    wall = t_last - t0
    return {
        "qos": qos,
        "window": window,
        "records": records,
        "wall_s": round(wall, 3),
        "records_per_s": round(records / wall),
    }


async def _latency(broker: Broker, qos: int, records: int, rate: float) -> dict[str, Any]:
    sink = make_sink(broker, qos, window=64, buffer_size=records + 1)
    created: dict[int, int] = {}
    lat: list[int] = []
    async with aiomqtt.Client(broker.host, broker.port) as sub:
        await sub.subscribe(TOPIC, qos=qos)
        await sink.start()
        await _until_connected(sink)

        async def read() -> None:
            async for m in sub.messages:
                seq = json.loads(m.payload)["seq"]
                lat.append(time.perf_counter_ns() - created[seq])
                if len(lat) >= records:
                    return

        reader = asyncio.ensure_future(read())
        t0 = time.perf_counter()
        for i in range(records):
            ahead = i / rate - (time.perf_counter() - t0)
            if ahead > 0:
                await asyncio.sleep(ahead)
            created[i] = time.perf_counter_ns()
            await sink.process(predictions_message(make_predictions([i % 10], [i * 1000], classes=10, score=0.5)))
        await asyncio.wait_for(reader, 60)
        await sink.stop()
    ms = np.asarray(lat) / 1e6
    p50, p99 = np.percentile(ms, [50, 99])
    return {"qos": qos, "rate": rate, "records": records, "p50_ms": round(p50, 3), "p99_ms": round(p99, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=20_000, help="records per throughput run")
    ap.add_argument("--latency-records", type=int, default=2_000)
    ap.add_argument("--rate", type=float, default=500.0, help="records/s in the latency runs")
    ap.add_argument("--json", help="write the figures to this file")
    args = ap.parse_args()
    binary = find_mosquitto()
    if binary is None:
        msg = "mosquitto not found (apt install mosquitto, or set $MOSQUITTO)"
        raise SystemExit(msg)
    rows: dict[str, list[dict[str, Any]]] = {"throughput": [], "latency": []}
    with tempfile.TemporaryDirectory(prefix="bench-mqtt-") as tmp:
        broker = Broker(binary, Path(tmp))
        broker.start()
        try:
            print(f"{'QoS':>3} {'window':>6} {'records':>8} {'wall s':>7} {'records/s':>10}")
            for qos in (0, 1):
                for window in (64, 256):
                    row = throughput(broker, qos, args.records, window)
                    rows["throughput"].append(row)
                    print(f"{qos:>3} {window:>6} {row['records']:>8} {row['wall_s']:>7} {row['records_per_s']:>10}")
            print(f"\n{'QoS':>3} {'rate/s':>7} {'records':>8} {'p50 ms':>7} {'p99 ms':>7}")
            for qos in (0, 1):
                row = asyncio.run(_latency(broker, qos, args.latency_records, args.rate))
                rows["latency"].append(row)
                print(f"{qos:>3} {row['rate']:>7.0f} {row['records']:>8} {row['p50_ms']:>7} {row['p99_ms']:>7}")
        finally:
            broker.kill()
    print(f"\nmachine: {platform.machine()}, {mp.cpu_count()} CPUs, Python {platform.python_version()}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows | {"machine": platform.platform(), "cpus": mp.cpu_count()}, fh, indent=2)


if __name__ == "__main__":
    main()
