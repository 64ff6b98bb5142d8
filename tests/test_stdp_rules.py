"""The seam between layer kinds and learning rules: a layer table's ``rule`` key picks its params class,
and each rule's keys are refused on another rule's layer, with the key's path."""

from __future__ import annotations

import re
import typing

import pytest

from nodes.stdp import ConvParams, FcParams, Network, TraceConvParams, TraceFcParams
from nodes.stdp.layers import LayerParams
from nodes.stdp.rules.registry import RULES
from nodes.stdp.shapes import ConvShape, FcShape
from pipeline.config import build_params
from pipeline.errors import ConfigError


def _layers(*tables: dict[str, object]) -> dict[str, object]:
    return {"input_shape": [1, 8, 8], "layers": list(tables)}


def _build(*tables: dict[str, object]) -> Network:
    return Network.from_config(_layers(*tables))


def test_a_layer_without_a_rule_key_learns_by_thieles_rule():
    net = _build({"type": "conv", "maps": 2, "kernel": 3, "th_learn": 2.0, "th_inf": 2.0})
    assert type(net.params[0]) is ConvParams
    assert net.params[0].rule == "thiele"


def test_rule_trace_builds_the_trace_params_of_each_layer_kind():
    net = _build(
        {"type": "conv", "rule": "trace", "maps": 2, "kernel": 3, "tau_m_us": 5000.0},
        {"type": "fc", "rule": "trace", "neurons": 3, "update": "multiplicative"},
    )
    assert [type(p) for p in net.params] == [TraceConvParams, TraceFcParams]
    assert net.params[0].tau_m_us == 5000.0
    assert net.layer_shapes == ((2, 6, 6), (3, 1, 1))


@pytest.mark.parametrize(
    ("table", "words"),
    [
        (
            {"type": "conv", "maps": 2, "th_learn": 1.0, "th_inf": 1.0, "tau_m_us": 1.0},
            "network layers[0]: key 'tau_m_us' is a parameter of rule 'trace', not of this layer's rule 'thiele'",
        ),
        (
            {"type": "fc", "neurons": 2, "th_learn": 1.0, "th_inf": 1.0, "theta_plus": 0.1},
            "network layers[0]: key 'theta_plus' is a parameter of rule 'trace', not of this layer's rule 'thiele'",
        ),
        (
            {"type": "conv", "maps": 2, "th_learn": 1.0, "th_inf": 1.0, "tau_theta_us": 1e6},
            "network layers[0]: key 'tau_theta_us' is a parameter of rule 'trace'",
        ),
        ({"type": "fc", "rule": "trace", "neurons": 2, "theta_plus": -0.1}, "theta_plus must be a finite number >= 0"),
        ({"type": "fc", "rule": "trace", "neurons": 2, "tau_theta_us": 0.0}, "tau_theta_us must be a finite number"),
        (
            {"type": "fc", "rule": "trace", "neurons": 2, "beta_plus": 3.0},
            "network layers[0]: key 'beta_plus' is a parameter of rule 'thiele', not of this layer's rule 'trace'",
        ),
        (
            {"type": "conv", "rule": "trace", "maps": 2, "a_minus": -0.1},
            "network layers[0]: key 'a_minus' is a parameter of rule 'thiele'",
        ),
        (
            {"type": "fc", "rule": "hebb", "neurons": 2},
            "rule must be one of 'thiele', 'trace' for type 'fc', got 'hebb'",
        ),
        ({"type": "fc", "rule": "trace", "neurons": 2, "tau_m": 1.0}, "network layers[0]: unknown key 'tau_m'"),
        ({"type": "fc", "rule": "trace", "neurons": 2, "update": "hebbian"}, "update must be one of 'additive'"),
        ({"type": "fc", "rule": "trace", "neurons": 2, "tau_m_us": 0.0}, "tau_m_us must be a finite number > 0"),
        ({"type": "fc", "rule": "trace", "neurons": 2, "v_reset": 9.0}, "v_reset must be finite and below both"),
    ],
)
def test_a_key_of_another_rule_or_a_bad_value_is_refused_with_its_path(table, words):
    with pytest.raises(ValueError, match=re.escape(words)):
        _build(table)


def test_the_loader_reports_a_misplaced_rule_key_as_a_config_error():
    from nodes.stdp.network import _NetworkTable

    with pytest.raises(ConfigError, match=re.escape("w layers[0]: key 'a_ltp' is a parameter of rule 'trace'")):
        build_params(_NetworkTable, _layers({"type": "fc", "neurons": 2, "th_learn": 1, "th_inf": 1, "a_ltp": 1}), "w")


def test_every_conv_and_fc_params_class_has_a_registered_rule_and_shape():
    learning = [p for p in typing.get_args(LayerParams) if issubclass(p, ConvShape | FcShape)]
    rules = {typing.get_args(typing.get_type_hints(p)["rule"])[0] for p in learning}
    assert rules == set(RULES)
    for rule in RULES:
        kinds = {issubclass(p, ConvShape) for p in learning if typing.get_type_hints(p)["rule"] == typing.Literal[rule]}
        assert kinds == {True, False}, f"rule {rule!r} needs a conv and an fc params class"


def test_the_default_rule_comes_first_in_the_union_for_each_layer_kind():
    members = typing.get_args(LayerParams)
    assert members.index(ConvParams) < members.index(TraceConvParams)
    assert members.index(FcParams) < members.index(TraceFcParams)
