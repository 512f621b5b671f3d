"""The YAML emitter used for every rendered file: what it writes reads back as the same data."""

from __future__ import annotations

import pytest
import yaml
from ansible_collections.pmoves.fleet.plugins.module_utils.compose_render import RenderError, to_yaml
from hypothesis import given, settings
from hypothesis import strategies as st

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.text(max_size=20),
    st.sampled_from(["yes", "no", "on", "off", "~", "null", "1:30", "0x1f", ".5", "1e3", "08", "a: b", "- x", "#c",
                     "x #y", "*ref", "&a", "!tag", "@at", "%p", "`b", "{a}", "[a]", "'q'", '"d"', "a:", "a.", " lead",
                     "trail ", "12.0", "8.6;12.0", "nvidia.com/gpu=0", "http://127.0.0.1:8080/x", "0.0.0.0:80:80"]),
)
keys = st.one_of(st.text(min_size=1, max_size=12), st.sampled_from(["on", "yes", "0", "x-pmoves-health", "a b", "a:b"]))
documents = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                          st.dictionaries(keys, inner, max_size=4)), max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(keys, documents, min_size=1, max_size=4))
def test_round_trips_through_a_yaml_parser(doc):
    assert yaml.safe_load(to_yaml(doc)) == doc


def test_keys_keep_their_order_and_output_is_block_style():
    text = to_yaml({"services": {"b": {"image": "x:1"}, "a": {"ports": ["127.0.0.1:80:80"]}}})
    assert text == 'services:\n  b:\n    image: x:1\n  a:\n    ports:\n      - "127.0.0.1:80:80"\n'


@pytest.mark.parametrize("bad", [{1: "int key"}, {"f": float("nan")}, {"o": object()}])
def test_refuses_what_it_cannot_write_faithfully(bad):
    with pytest.raises(RenderError):
        to_yaml(bad)
