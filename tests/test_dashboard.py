"""The live dashboard: its status endpoint and commands without a browser, then the page itself in headless
Chromium (Playwright driving the system's ``/usr/bin/chromium``; skipped, saying why, without them) watching
and teaching one running graph."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
from graphs import conv, encoder, fc, free_port, graph, pool, stdp, write_graph

from nodes.dashboard.attach import attach_dashboard, dashboard_url, parse_address
from nodes.dashboard.node import DashboardNode, DashboardParams
from nodes.dashboard.state import DashboardState
from nodes.demo import demo_config
from pipeline.checkpoint import cut_members
from pipeline.config import parse_graph
from pipeline.errors import ConfigError
from pipeline.events import prediction_dtype
from pipeline.message import predictions_message
from pipeline.metrics import counters_message, metrics_stream
from pipeline.node import Counters, NodeContext

COMPARED = ("messages_in", "messages_out", "events_in", "events_out", "gaps", "drops", "malformed", "errors")


def dashboard(downstream: tuple[str, ...] = ("stdp",), **params: Any) -> DashboardNode:
    cfg = DashboardParams(**({"port": 0, "classes": 4} | params))
    return DashboardNode("dashboard", cfg, NodeContext(name="dashboard", graph="test", downstream=downstream))


async def get_status(node: DashboardNode) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session, session.get(node.server.address + "api/status") as r:
        assert r.status == 200
        return dict(await r.json())


# -- without a browser ---------------------------------------------------------------------------------------
def test_every_tapped_node_is_listed_before_its_first_counters_arrive() -> None:
    state = DashboardState(classes=4, window_ms=100.0)
    state.expect(("cam", "stdp"))
    before = state.status()["nodes"]
    assert set(before) == {"cam", "stdp"}
    assert before["cam"]["counters"] == {}
    assert before["cam"]["age_s"] is None
    state.update(counters_message("cam", "simulated-camera", {"events_out": 5}).stamped(metrics_stream("cam"), 0))
    after = state.status()["nodes"]
    assert after["cam"]["counters"] == {"events_out": 5}
    assert after["cam"]["age_s"] is not None
    assert after["cam"]["type"] == "simulated-camera"
    assert after["stdp"]["age_s"] is None


def test_the_status_endpoint_shows_every_node_its_counters_and_the_current_prediction() -> None:
    node = dashboard()

    async def main() -> dict[str, Any]:
        await node.start()
        try:
            counters = Counters(events_in=1200, events_out=34, gaps=0, drops=2)
            body = counters.as_dict() | {"errors": 0}
            await node.process(counters_message("stdp", "stdp", body).stamped(metrics_stream("stdp"), 0))
            rec = np.zeros(2, prediction_dtype(4))
            rec["t"] = [10, 20]
            rec["label"] = [1, 3]
            rec["truth"] = [-1, 3]
            rec["decision"] = [0, 1]
            rec["train"] = [0, 1]
            rec["scores"][1] = [0.1, 0.2, 0.3, 0.9]
            await node.process(predictions_message(rec).stamped("classifier", 0))
            return await get_status(node)
        finally:
            await node.stop()

    status = asyncio.run(main())
    assert status["nodes"]["stdp"]["type"] == "stdp"
    assert status["nodes"]["stdp"]["counters"]["events_in"] == 1200
    assert status["nodes"]["stdp"]["counters"]["drops"] == 2
    assert status["prediction"] == {"t": 20, "label": 3, "scores": pytest.approx([0.1, 0.2, 0.3, 0.9], abs=1e-6)}
    assert status["online_accuracy"] == 1.0  # the one decision with a truth was right
    assert status["test_accuracy"] is None
    assert status["stream_t"] == 20  # where a label taught now would start


def test_node_views_give_learning_kernels_spikes_per_map_per_second_and_how_old_counters_are() -> None:
    """What a node shows (``Node.watch``) rides its metrics messages; counters carry their age, so a busy tap
    that delivers them late shows it, and a node once behind stays marked."""
    state = DashboardState(classes=4, window_ms=50)
    wall = time.time_ns()

    def metrics(seq: int, at_ns: int, spikes: list[int], *, shed: int = 0, **view: Any) -> None:
        counters = Counters(events_in=100 * seq, shed=shed).as_dict() | {"errors": 0}
        msg = counters_message(
            "stdp", "stdp", counters, view={"layers": [{"layer": 0, "kind": "conv", "spikes": spikes}]} | view
        )
        msg.body["wall_ns"] = at_ns  # type: ignore[index]
        state.update(msg.stamped(metrics_stream("stdp"), seq))

    kernels = {"maps": 2, "channels": 2, "height": 1, "width": 1, "pixels": "AP8A/w=="}
    metrics(0, wall - 7_000_000_000, [0, 10, 0], learning=True, kernels=kernels, shed=5)
    metrics(1, wall - 5_000_000_000, [0, 30, 4], learning=False)
    view = state.view()
    stdp_ = view["nodes"]["stdp"]
    assert stdp_["learning"] is False
    assert stdp_["age_s"] >= 5.0  # read 5 s ago: the page says how old
    assert stdp_["behind"] is False  # (shed is only read once: its counter here went back to 0)
    assert stdp_["fell_behind_at"] == pytest.approx((wall - 7_000_000_000) / 1e9, abs=1e-3)  # still marked
    assert view["layers"]["stdp"] == [
        {"layer": 0, "kind": "conv", "maps": 3, "per_s": [0.0, 10.0, 2.0], "firing": 2}  # 2 s between readings
    ]
    assert view["kernels"]["stdp"]["maps"] == 2
    assert view["kernels"]["stdp"]["age_s"] >= 7.0


def test_a_page_without_the_token_is_read_only_and_told_why() -> None:
    node = dashboard(host="127.0.0.1", token="s3cret")
    replies: dict[str, list[dict[str, Any]]] = {}

    async def main() -> None:
        await node.start()
        try:
            async with aiohttp.ClientSession() as session:
                for who, query in (("stranger", ""), ("owner", "?token=s3cret")):
                    async with session.ws_connect(node.server.address + "ws" + query) as ws:
                        hello = await ws.receive_json()
                        assert hello["can_teach"] is (who == "owner")
                        replies[who] = []
                        for cmd in ({"cmd": "label", "label": 2}, {"cmd": "label", "label": 7}):
                            await ws.send_str(json.dumps(cmd))
                            while (m := await ws.receive_json())["type"] != "reply":
                                pass
                            replies[who].append(m)
        finally:
            await node.stop()

    asyncio.run(main())
    assert [r["ok"] for r in replies["stranger"]] == [False, False]
    assert "read-only" in replies["stranger"][0]["error"]
    assert replies["owner"][0]["ok"] is True
    assert replies["owner"][0]["label"] == 2
    assert replies["owner"][1] == {"type": "reply", "ok": False, "error": "label 7 out of range -1..3"}
    assert node.accepted == 1  # one label went into the graph; nothing else did
    assert len(asyncio.run(node.background_ready())) == 1


def test_a_page_gets_its_next_frame_only_once_it_has_drawn_the_last() -> None:
    """Frames never queue up in the socket of a page that draws slowly: those it misses are counted."""
    node = dashboard(fps=20.0)
    got: list[str] = []

    async def main() -> None:
        await node.start()
        try:
            async with aiohttp.ClientSession() as session, session.ws_connect(node.server.address + "ws") as ws:
                got.append((await ws.receive_json())["type"])  # hello
                got.append((await ws.receive_json())["type"])  # the first frame
                with pytest.raises(asyncio.TimeoutError):  # not drawn yet: nothing more comes
                    await ws.receive_json(timeout=0.5)
                await ws.send_str("drawn")
                got.append((await ws.receive_json(timeout=5))["type"])
        finally:
            await node.stop()

    asyncio.run(main())
    assert got == ["hello", "view", "view"]
    assert node.state.frames_dropped >= 5  # ~10 frames came due while the page had not drawn
    assert node.refused == 0  # "drawn" is not a command


def test_a_dashboard_served_beyond_loopback_gets_a_token() -> None:
    graph_ = parse_graph(demo_config(5, 5, []), "demo")
    attached = attach_dashboard(graph_, "0.0.0.0:8123")
    url = dashboard_url(attached)
    assert url is not None
    assert url.startswith("http://0.0.0.0:8123/?token=")
    assert len(url.split("token=")[1]) >= 16
    assert dashboard_url(attach_dashboard(graph_, "8124")) == "http://127.0.0.1:8124/"  # loopback: none needed
    with pytest.raises(ConfigError, match="PORT"):
        parse_address("127.0.0.1:http")


def test_attaching_taps_every_node_and_links_the_page_to_the_first_stdp_node() -> None:
    demo = parse_graph(demo_config(5, 5, []), "demo")
    attached = attach_dashboard(demo, "127.0.0.1:0")
    assert attached.nodes["dashboard"].type == "dashboard"
    assert attached.nodes["dashboard"].params["classes"] == 10
    assert sorted(attached.tap_upstream("dashboard")) == sorted(demo.nodes)
    assert attached.downstream("dashboard") == ["stdp"]
    assert attached.fed_by_taps_only("dashboard")
    assert attached.links[: len(demo.links)] == demo.links  # the graph's own links are untouched
    assert attached.tap_hwm == 16 < demo.tap_hwm  # a viewer wants the newest: short tap queues
    # the page's commands carry no checkpoint markers: the graph keeps its consistent cuts
    assert cut_members(attached) == cut_members(demo) is not None


@pytest.mark.parametrize(
    ("links", "target"),
    [
        (["cam -> encoder", "encoder -> decolle", "decolle -> classifier"], "decolle"),
        (["cam -> encoder", "encoder -> stdp", "stdp -> decolle", "decolle -> classifier"], "stdp"),
        (["cam -> encoder", "encoder -> classifier"], "classifier"),
        (["cam -> encoder"], None),
    ],
)
def test_the_page_teaches_the_first_learning_node_along_the_links(links: list[str], target: str | None) -> None:
    nodes = {
        "cam": {"type": "simulated-camera", "width": 16, "height": 16},
        "encoder": encoder(16),
        "stdp": stdp((2, 16, 16), [conv(4, 8.0), pool(), fc(8, 10.0)], seed=1),
        "decolle": {"type": "decolle", "input": [2, 16, 16], "reset": "label", "classes": 4},
        "classifier": {"type": "classifier", "readout": "delta", "classes": 4, "inputs": 8},
    }
    used = {n for link in links for n in link.split(" -> ")}
    g = parse_graph(graph("t", links, {n: v for n, v in nodes.items() if n in used}), "t")
    assert attach_dashboard(g, "127.0.0.1:0").downstream("dashboard") == ([target] if target else [])


def run_cli(*args: str, logs: Path) -> subprocess.Popen[str]:
    """The CLI in a process group of its own, its output in ``logs``.out and .err: files, not pipes, which
    a long run would fill (and then block in its logging) while the test is busy elsewhere."""
    cmd = [sys.executable, "-m", "pipeline.cli", *args]
    with open(f"{logs}.out", "w") as out, open(f"{logs}.err", "w") as err:
        return subprocess.Popen(cmd, stdout=out, stderr=err, text=True, start_new_session=True)


def output(logs: Path) -> tuple[str, str]:
    return Path(f"{logs}.out").read_text(), Path(f"{logs}.err").read_text()


def poll(
    what: str, check: Callable[[], Any], timeout_s: float = 20.0, proc: subprocess.Popen[str] | None = None
) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            got = check()
        except (OSError, aiohttp.ClientError, ValueError):
            got = None
        if got:
            return got
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the run ended (exit code {proc.returncode}) while waiting for {what}")
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def fetch_status(port: int) -> dict[str, Any]:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status", timeout=2) as r:
        return dict(json.loads(r.read()))


@pytest.mark.timeout(120)
def test_run_with_dashboard_serves_the_status_of_a_running_graph_and_ends_with_it(tmp_path: Path) -> None:
    """``spikestream run --dashboard``: the status lists every node with counters that grow while it runs;
    the dashboard does not hold up the end of the run, and appears in the results with nothing refused."""
    doc = graph(
        "chain-dash",
        ["source -> relay", "relay -> sink"],
        {
            "source": {"type": "synthetic", "events": 1_000_000, "batch": 2_000, "rate": 250_000.0},
            "relay": {"type": "identity"},
            "sink": {"type": "checksum"},
        },
        transport="ipc",
        ipc_dir=str(tmp_path),
        log_every_s=0,
    )
    port = free_port()
    results = tmp_path / "r.json"
    cfg = write_graph(tmp_path / "g.toml", doc)
    proc = run_cli("run", str(cfg), "--dashboard", str(port), "--results", str(results), logs=tmp_path / "cli")
    try:
        first = poll(
            "the source's first counters",
            lambda: (s := fetch_status(port).get("nodes", {}).get("source")) and s["counters"] and s,
            timeout_s=60,
            proc=proc,
        )
        later = poll(
            "the source's counters to grow",
            lambda: (
                (s := fetch_status(port)["nodes"]["source"])["counters"]["events_out"] > first["counters"]["events_out"]
                and s
            ),
            proc=proc,
        )
        assert set(fetch_status(port)["nodes"]) == {"source", "relay", "sink"}
        assert later["final"] is False
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, output(tmp_path / "cli")[1]
    r = json.loads(results.read_text())
    assert r["errors"] == {}
    assert r["interrupted"] == []
    assert r["nodes"]["sink"]["counters"]["events_in"] == 1_000_000
    assert r["dashboard_refused"] == 0
    assert r["nodes"]["dashboard"]["counters"]["gaps"] == 0


# -- in a browser --------------------------------------------------------------------------------------------
def learning_graph(tmp_path: Path, seconds: float) -> dict[str, Any]:
    """A camera stand-in (synthetic events stamped with the wall clock) for ``seconds``, learnt from by a
    small network and a classifier of 4 classes that no label reaches but the page's."""
    layers = [conv(4, 8.0, a_minus=-0.005), pool(), fc(8, 10.0, a_minus=-0.005, wta_inf=True)]
    nodes = {
        "cam": {"type": "simulated-camera", "rate": 20000, "width": 16, "height": 16, "duration_s": seconds},
        "encoder": encoder(16),
        "stdp": stdp((2, 16, 16), layers, seed=1),
        "classifier": {"type": "classifier", "readout": "supervised", "classes": 4, "inputs": 8, "threshold": 2.0},
        "evaluate": {"type": "evaluate", "classes": 4, "window": 10, "curve_every": 1, "log_every": 0},
    }
    links = ["cam -> encoder", "encoder -> stdp", "stdp -> classifier", "classifier -> evaluate"]
    return graph("dash-live", links, nodes, transport="inproc", ipc_dir=str(tmp_path), log_every_s=0)


class Live:
    """One graph run with a dashboard, watched by the browser tests below in turn."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.results = folder / "r.json"
        cfg = write_graph(folder / "live.toml", learning_graph(folder, 25.0))
        self.logs = folder / "cli"
        self.proc = run_cli(
            "run", str(cfg), "--dashboard", str(self.port), "--results", str(self.results), "-q", logs=self.logs
        )
        self.watcher: Any = None  #: a page that watches the whole run

    def running(self) -> bool:
        return self.proc.poll() is None

    def finish(self) -> dict[str, Any]:
        self.proc.wait(timeout=60)
        assert self.proc.returncode == 0, output(self.logs)[1]
        return dict(json.loads(self.results.read_text()))


@pytest.fixture(scope="module")
def live(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    run = Live(tmp_path_factory.mktemp("live"))
    try:
        poll("the dashboard", lambda: fetch_status(run.port), timeout_s=40, proc=run.proc)
        run.watcher = open_page(browser, run.url)
        yield run
    finally:
        if run.proc.poll() is None:
            os.killpg(run.proc.pid, signal.SIGKILL)
            run.proc.wait()


def open_page(browser: Any, url: str, errors: list[str] | None = None) -> Any:
    page = browser.new_page()
    if errors is not None:
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    return page


def lit_pixels(page: Any) -> int:
    """Pixels of the first event canvas that differ from the background."""
    return int(
        page.evaluate(
            """() => {
                const c = document.querySelector('canvas.events');
                if (!c || !c.width) return 0;
                const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                let n = 0;
                for (let i = 0; i < d.length; i += 4) if (d[i] !== 17 || d[i + 1] !== 17 || d[i + 2] !== 17) n++;
                return n;
            }"""
        )
    )


def counter(page: Any, node: str, name: str) -> int | None:
    cell = page.query_selector(f'tr[data-node="{node}"] td[data-counter="{name}"]')
    text = cell.inner_text() if cell else ""
    return int(text.replace(",", "")) if text.replace(",", "").isdigit() else None


@pytest.mark.browser
@pytest.mark.timeout(60)
def test_the_page_loads_without_console_errors_and_draws_events_within_seconds(browser: Any, live: Live) -> None:
    errors: list[str] = []
    page = open_page(browser, live.url, errors)
    lit = poll("events on the canvas", lambda: lit_pixels(page), timeout_s=10, proc=live.proc)
    assert lit > 0
    assert page.inner_text("#status") == "live"
    assert errors == []
    page.close()


@pytest.mark.browser
@pytest.mark.timeout(60)
def test_a_label_clicked_on_the_page_reaches_the_classifier_and_a_refused_one_says_why(
    browser: Any, live: Live
) -> None:
    page = open_page(browser, live.url)
    poll("the label buttons", lambda: page.query_selector('button[data-label="2"]'), proc=live.proc)
    page.click('button[data-label="2"]')
    poll("the reply", lambda: page.inner_text("#reply").startswith("accepted"), proc=live.proc)
    assert page.inner_text("#reply") == "accepted: label 2"
    page.evaluate("send({cmd: 'label', label: 9})")  # what a button never sends: refused, with the reason
    poll("the refusal", lambda: page.inner_text("#reply").startswith("refused"), proc=live.proc)
    assert page.inner_text("#reply") == "refused: label 9 out of range -1..3"
    learning = lambda: page.inner_text('tr[data-node="stdp"] td[data-counter="learning"]')  # noqa: E731
    poll("the stdp node learning", lambda: learning() == "on", proc=live.proc)
    for button, said, flag in (("freeze", "freeze (features)", "off"), ("unfreeze", "unfreeze (features)", "on")):
        page.click(f'button[data-cmd="{button}"][data-scope="features"]')
        poll(button, lambda said=said: page.inner_text("#reply") == f"accepted: {said}", proc=live.proc)
        poll(f"learning {flag} in the graph panel", lambda flag=flag: learning() == flag, proc=live.proc)
    page.close()


@pytest.mark.browser
@pytest.mark.timeout(60)
def test_counters_and_prediction_change_while_it_runs_and_a_second_page_sees_the_same(browser: Any, live: Live) -> None:
    page = live.watcher
    first = poll("the camera's counters", lambda: counter(page, "cam", "events_out"), proc=live.proc)
    poll("the counters to change", lambda: (counter(page, "cam", "events_out") or 0) > first, proc=live.proc)
    poll("a prediction", lambda: page.inner_text("#prediction") not in ("", "–"), proc=live.proc)
    second = open_page(browser, live.url)
    poll("the second page's table", lambda: second.query_selector('tr[data-node="classifier"]'), proc=live.proc)
    rows = "tr[data-node]"
    same = lambda: sorted(e.get_attribute("data-node") for e in page.query_selector_all(rows))  # noqa: E731
    assert same() == sorted(e.get_attribute("data-node") for e in second.query_selector_all(rows))
    # every tapped node has a row from the start, reported or not (a busy tap may lose its first counters)
    assert set(same()) == {"cam", "encoder", "stdp", "classifier", "evaluate"}
    second.close()


def kernel_pixels(page: Any) -> int:
    """Pixels of the stdp node's kernel grid that are neither the background nor the gaps between tiles."""
    return int(
        page.evaluate(
            """() => {
                const c = document.querySelector('canvas.kernels[data-stream="stdp"]');
                if (!c || !c.width) return 0;
                const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                let n = 0;
                for (let i = 0; i < d.length; i += 4) {
                    const bg = d[i] === 17 && d[i + 1] === 17 && d[i + 2] === 17;
                    const gap = d[i] === 40 && d[i + 1] === 44 && d[i + 2] === 52;
                    if (!bg && !gap) n++;
                }
                return n;
            }"""
        )
    )


@pytest.mark.browser
@pytest.mark.timeout(60)
def test_the_features_panel_draws_the_first_layers_kernels_and_which_maps_fire_per_layer(
    browser: Any, live: Live
) -> None:
    page = live.watcher
    assert poll("the kernel grid", lambda: kernel_pixels(page), timeout_s=15, proc=live.proc) > 0
    title = page.inner_text('canvas.kernels[data-stream="stdp"] >> xpath=preceding-sibling::div')
    assert title.startswith("stdp: 4 maps of 2×5×5")
    firing = lambda layer: page.get_attribute(f'canvas.layer-spikes[data-stream="stdp/{layer}"]', "data-firing")  # noqa: E731
    poll("maps firing in the first layer", lambda: int(firing(0) or 0) > 0, timeout_s=15, proc=live.proc)
    assert page.query_selector('canvas.layer-spikes[data-stream="stdp/2"]') is not None  # the fc layer too
    assert page.query_selector('canvas.layer-spikes[data-stream="stdp/1"]') is None  # a pool has no maps


@pytest.mark.browser
@pytest.mark.timeout(90)
def test_a_page_that_disconnects_changes_nothing_and_the_last_counters_are_the_results(
    browser: Any, live: Live
) -> None:
    """Every page but the watcher's left mid-run (the tests above close theirs)."""
    watcher = live.watcher
    poll("the end of the run", lambda: not live.running(), timeout_s=60)
    results = live.finish()
    poll("the last state on the page", lambda: watcher.inner_text("#status").startswith("run ended"), timeout_s=5)
    assert results["errors"] == {}
    assert results["interrupted"] == []
    for node in ("cam", "encoder", "stdp", "classifier", "evaluate"):
        report = results["nodes"][node]["counters"]
        for name in ("events_in", "events_out", "gaps", "drops", "malformed", "errors"):
            assert counter(watcher, node, name) == report[name], (node, name)
    for up, down in (("cam", "encoder"), ("stdp", "classifier")):  # lossless: nothing lost on the way
        assert results["nodes"][up]["counters"]["events_out"] == results["nodes"][down]["counters"]["events_in"]
    # the label taught from the page: the classifier learnt from it, and its segment was decided as class 2
    assert results["classifier"]["updates"] > 0
    assert results["samples"]["train"] >= 1
    assert results["dashboard_accepted"] == 3  # the label, freeze and unfreeze
    assert results["dashboard_refused"] == 1
    # the commands reached the stdp node once each: a control that came back over a tap is not sent again
    nodes = results["nodes"]
    assert nodes["stdp"]["counters"]["messages_in"] == nodes["encoder"]["counters"]["messages_out"] + 3
    watcher.close()


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.timeout(900)
def test_the_demo_page_shows_it_learning_and_keeps_the_last_state(browser: Any, tmp_path: Path) -> None:
    """``spikestream demo --dashboard``: the page follows the run and keeps its last state after it until
    Ctrl-C. Its screenshot goes to ``$SPIKESTREAM_SCREENSHOT`` when set (``docs/dashboard.png`` is made so)."""
    port = free_port()
    shot = Path(os.environ.get("SPIKESTREAM_SCREENSHOT", tmp_path / "dashboard.png"))
    cmd = ["demo", "--out", str(tmp_path / "demo"), "--train", "400", "--test", "100", "--dashboard", str(port)]
    proc = run_cli(*cmd, logs=tmp_path / "cli")
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        poll("the demo's dashboard", lambda: fetch_status(port), timeout_s=120, proc=proc)
        page.goto(f"http://127.0.0.1:{port}/")
        poll("decisions on the page", lambda: page.inner_text("#recent tbody").strip(), timeout_s=300, proc=proc)
        poll("the end of the run", lambda: fetch_status(port)["ended"], timeout_s=600, proc=proc)
        status = fetch_status(port)
        poll("the last state on the page", lambda: page.inner_text("#status").startswith("run ended"), timeout_s=10)
        page.screenshot(path=str(shot), full_page=True)
        poll("the demo's summary", lambda: "until Ctrl-C" in output(tmp_path / "cli")[0], timeout_s=120, proc=proc)
        assert fetch_status(port)["ended"]  # still serving the last state
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    finally:
        page.close()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    out, err = output(tmp_path / "cli")
    assert proc.returncode == 0, err
    assert "verdict: it learned" in out
    results = json.loads((tmp_path / "demo" / "results.json").read_text())
    # what the page counted, less what its taps lost (counted too), is what the evaluation counted
    assert status["decisions"]["online"] <= results["samples"]["train"] == 400
    assert status["decisions"]["test"] <= results["samples"]["test"] == 100
    assert status["decisions"]["online"] + status["decisions"]["test"] > 0
    assert shot.stat().st_size > 10_000
