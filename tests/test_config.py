"""Graph configs: structure checks and per-node parameters, with the key and the file named."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest

from pipeline.config import build_params, data_path, load_graph
from pipeline.endpoints import resolve_endpoints
from pipeline.errors import ConfigError
from pipeline.node_runner import NodeRunner
from pipeline.overrides import apply_overrides, parse_value
from pipeline.validation import validate_graph

REPO = Path(__file__).resolve().parent.parent

GOOD = """
name = "g"
transport = "inproc"
links = ["src -> sink"]

[nodes.src]
type = "synthetic"
events = 10

[nodes.sink]
type = "checksum"
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "graph.toml"
    p.write_text(text)
    return p


def make_runners(path: Path, overrides=()):
    import zmq.asyncio

    graph = load_graph(path, list(overrides))
    nodes = validate_graph(graph)
    ctx = zmq.asyncio.Context()
    runners = []
    try:
        eps = resolve_endpoints(graph, None, pick_ports=True)
        for n in graph.nodes:
            runners.append(NodeRunner(graph, nodes[n], eps, ctx))
        return runners
    finally:
        for r in runners:
            r.close()
        ctx.term()


def test_good_graph_loads(tmp_path):
    g = load_graph(write(tmp_path, GOOD))
    assert g.links == (("src", "sink"),)
    assert g.nodes["src"].params == {"events": 10}
    runners = make_runners(write(tmp_path, GOOD))
    assert runners[0].node.config.events == 10


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (GOOD.replace("events = 10", "evnets = 10"), r"graph.toml \[nodes.src\]: unknown key 'evnets'"),
        (GOOD.replace("events = 10", 'events = "many"'), r"\[nodes.src\] events must be an integer"),
        (GOOD.replace("events = 10", "events = -1"), r"\[nodes.src\]: events must be >= 0"),
        (GOOD.replace('type = "checksum"', 'type = "teleport"'), "unknown node type 'teleport'"),
    ],
)
def test_bad_node_params_name_key_and_file(tmp_path, text, words):
    with pytest.raises(ConfigError, match=words):
        make_runners(write(tmp_path, text))


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("colour = 1\n" + GOOD, "unknown top-level key 'colour'"),
        (GOOD.replace('"inproc"', '"carrier-pigeon"'), "transport must be one of"),
        (GOOD.replace('"src -> sink"', '"src -> nowhere"'), "names node 'nowhere'"),
        (GOOD.replace('"src -> sink"', '"src sink"'), "a link is written 'a -> b'"),
        (
            GOOD.replace('"src -> sink"', '"src -> a", "a -> b", "b -> sink", "sink -> a"')
            + '[nodes.a]\ntype = "identity"\n[nodes.b]\ntype = "identity"\n',
            "links form a cycle, a -> b -> sink -> a: a stream through lossless links must end",
        ),
        (GOOD.replace('type = "checksum"\n', ""), "nodes.sink has no 'type'"),
        ("name = 'x'\n", "needs a \\[nodes.NAME\\] table"),
        ("this is not toml", "not valid TOML"),
    ],
)
def test_bad_graph_structure(tmp_path, text, words):
    with pytest.raises(ConfigError, match=words):
        load_graph(write(tmp_path, text))


def test_links_are_checked_for_cycles_but_taps_and_diamonds_are_not_cycles(tmp_path):
    """A diamond (fan-out, then fan-in) has no cycle; a tap back upstream is no link (its subscriber
    waits for no end-of-stream through it); a link back upstream is refused, naming the cycle once."""
    nodes = GOOD + '[nodes.a]\ntype = "identity"\n[nodes.b]\ntype = "identity"\n'
    diamond = nodes.replace('"src -> sink"', '"src -> a", "src -> b", "a -> sink", "b -> sink"')
    assert len(load_graph(write(tmp_path, diamond)).links) == 4
    tapped = nodes.replace('"src -> sink"', '"src -> a", "a -> b", "b -> sink"]\ntaps = ["sink -> a"')
    assert load_graph(write(tmp_path, tapped)).taps == (("sink", "a"),)
    two = nodes.replace('"src -> sink"', '"src -> a", "a -> b", "b -> a", "b -> sink"')
    with pytest.raises(ConfigError, match=r"links form a cycle, a -> b -> a: "):
        load_graph(write(tmp_path, two))


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="config file not found: .*nope.toml"):
        load_graph(tmp_path / "nope.toml")


def test_node_without_input_is_refused(tmp_path):
    text = GOOD.replace('links = ["src -> sink"]', "links = []")
    with pytest.raises(ConfigError, match="nodes.sink has no input"):
        make_runners(write(tmp_path, text))


def test_overrides_parse_toml_values():
    assert parse_value("3") == 3
    assert parse_value("2.5") == 2.5
    assert parse_value("true") is True
    assert parse_value("[1, 2]") == [1, 2]
    assert parse_value("hello world") == "hello world"
    doc = apply_overrides({"nodes": {"a": {"x": 1}}}, ["nodes.a.x=7", "nodes.b.y=on", "transport=ipc"], "f")
    assert doc == {"nodes": {"a": {"x": 7}, "b": {"y": "on"}}, "transport": "ipc"}
    with pytest.raises(ConfigError, match="dotted.key=value"):
        apply_overrides({}, ["novalue"], "f")
    with pytest.raises(ConfigError, match="not a table"):
        apply_overrides({"a": 1}, ["a.b=2"], "f")


def test_set_reaches_list_items_and_names_a_bad_index(tmp_path):
    """``--set nodes.stdp.layers[0].maps=8`` changes that layer only; an index beyond the list, or into
    something that is not a list, is one line naming the key, the list's length and the file."""
    cfg = REPO / "configs" / "nmnist.toml"
    layers = load_graph(cfg).nodes["stdp"].params["layers"]
    g = load_graph(cfg, ["nodes.stdp.layers[0].maps=8", "nodes.stdp.layers[-1].neurons=64"])
    changed = g.nodes["stdp"].params["layers"]
    assert changed[0] == {**layers[0], "maps": 8}
    assert changed[-1] == {**layers[-1], "neurons": 64}
    assert changed[1:-1] == layers[1:-1]
    n = len(layers)
    with pytest.raises(
        ConfigError,
        match=rf"^--set nodes.stdp.layers\[{n}\].maps: nodes.stdp.layers has {n} items \(0 to {n - 1}\) in ",
    ):
        load_graph(cfg, [f"nodes.stdp.layers[{n}].maps=8"])
    with pytest.raises(ConfigError, match=r"nodes.stdp.seed is not a list in .*nmnist.toml"):
        load_graph(cfg, ["nodes.stdp.seed[0]=1"])
    with pytest.raises(ConfigError, match=r"'layers\[one\]' is not a key"):
        load_graph(cfg, ["nodes.stdp.layers[one].maps=1"])


def test_set_override_reaches_node(tmp_path):
    runners = make_runners(write(tmp_path, GOOD), ["nodes.src.events=99"])
    assert runners[0].node.config.events == 99


def test_build_params_types():
    from dataclasses import dataclass

    @dataclass(frozen=True, kw_only=True)
    class P:
        a: float = 1.0
        b: tuple[int, ...] = ()
        c: str | None = None

    assert build_params(P, {"a": 2, "b": [1, 2]}, "w") == P(a=2.0, b=(1, 2))
    with pytest.raises(ConfigError, match=r"w b\[1\] must be an integer"):
        build_params(P, {"b": [1, "x"]}, "w")
    with pytest.raises(ConfigError, match="w a must be a number"):
        build_params(P, {"a": True}, "w")


def test_data_path_resolves_against_data_root(monkeypatch, tmp_path):
    monkeypatch.setenv("SPIKESTREAM_DATA", str(tmp_path))
    assert data_path("nmnist/Train") == tmp_path / "nmnist" / "Train"
    assert data_path("/abs/x") == Path("/abs/x")


def test_data_root_is_beside_the_checkout_unless_the_environment_says_otherwise(monkeypatch, tmp_path):
    """The CLI looks from the current folder (the checkout, as the README runs it); tests and benchmarks
    name the checkout, so that they find the recordings from any folder."""
    from pipeline.config import data_root

    monkeypatch.delenv("SPIKESTREAM_DATA", raising=False)
    assert data_root() == Path("..") / "shared" / "recordings"
    assert data_root(tmp_path / "repo") == tmp_path / "shared" / "recordings"
    monkeypatch.setenv("SPIKESTREAM_DATA", str(tmp_path / "elsewhere"))
    assert data_root() == data_root(tmp_path / "repo") == tmp_path / "elsewhere"


@pytest.mark.parametrize(
    "path", sorted((Path(__file__).parent.parent / "configs").glob("*.toml")), ids=lambda p: p.name
)
def test_shipped_configs_are_valid(path):
    graph = load_graph(path)
    validate_graph(graph)  # every node type known, every parameter accepted
    assert graph.nodes
    assert graph.links


def test_shipped_configs_keep_their_state_in_folders_of_their_own():
    """Two shipped graphs run from one folder (the README's camera, then camera-teach) must not share a
    default state folder: the second would refuse the first's checkpoints."""
    folders: dict[str, str] = {}
    for path in sorted((REPO / "configs").glob("*.toml")):
        state = load_graph(path).state_dir
        if state is not None:
            assert state not in folders, f"{path.name} and {folders[state]} share state_dir = {state!r}"
            folders[state] = path.name
    assert folders["state/camera"] == "camera.toml"
    assert folders["state/camera-teach"] == "camera-teach.toml"


@dataclass(frozen=True, kw_only=True)
class _Apple:
    type: Literal["apple"] = "apple"
    seeds: int


@dataclass(frozen=True, kw_only=True)
class _Pear:
    type: Literal["pear"] = "pear"
    weight: float = 1.0


@dataclass(frozen=True, kw_only=True)
class _Basket:
    fruit: tuple[_Apple | _Pear, ...] = ()


def test_a_table_in_a_union_of_tagged_dataclasses_is_built_as_the_one_its_type_names():
    basket = build_params(_Basket, {"fruit": [{"type": "apple", "seeds": 3}, {"type": "pear"}]}, "w")
    assert basket == _Basket(fruit=(_Apple(seeds=3), _Pear()))
    for fruit, words in (
        ([{"type": "apple", "seeds": 1}, {"type": "pear", "seeds": 2}], "w fruit[1]: unknown key 'seeds'"),
        ([{"type": "apple"}], "w fruit[0]: missing required key(s) seeds"),
        ([{"seeds": 1}], "w fruit[0]: missing required key(s) type (one of 'apple', 'pear')"),
        ([{"type": "plum"}], "w fruit[0] type must be one of 'apple', 'pear', got 'plum'"),
        ([{"type": "pear", "weight": "heavy"}], "w fruit[0] weight must be a number, got 'heavy'"),
    ):
        with pytest.raises(ConfigError, match=re.escape(words)) as info:
            build_params(_Basket, {"fruit": fruit}, "w")
        assert "\n" not in str(info.value)
