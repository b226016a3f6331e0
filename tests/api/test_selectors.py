"""Tests for cloudlet.api.selectors: parsing, matching, canonical strings and
kube-apiserver's error wording (vectors ported from k8s.io/apimachinery v0.32)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloudlet.api.selectors import (
    DOES_NOT_EXIST,
    EQUALS,
    EXISTS,
    IN,
    NOT_EQUALS,
    NOT_IN,
    FieldSelector,
    LabelSelector,
    Requirement,
    SelectorError,
    check_fields,
    label_selector_from_spec,
    parse_field_selector,
    parse_label_selector,
    selector_spec_to_string,
)

# --- label selector: parsing -------------------------------------------------------


@pytest.mark.parametrize(
    "s",
    ["x=a,y=b,z=c", "", "x!=a,y=b", "x=", "x= ", "x=,z= ", "x= ,z= ", "!x", "x>1", "x>1,z<5"],
)
def test_good_strings_restring_without_spaces(s: str) -> None:
    # apimachinery TestSelectorParse: String() is the input minus spaces.
    assert str(parse_label_selector(s)) == s.replace(" ", "")


@pytest.mark.parametrize("s", ["x=a||y=b", "x==a==b", "!x=a", "x<a"])
def test_bad_strings(s: str) -> None:
    with pytest.raises(SelectorError):
        parse_label_selector(s)


@pytest.mark.parametrize(
    ("s", "reqs"),
    [
        ("", []),
        ("\rx", [("x", EXISTS, ())]),
        (
            "this-is-a-dns.domain.com/key-with-dash",
            [("this-is-a-dns.domain.com/key-with-dash", EXISTS, ())],
        ),
        (
            "0.1.2.domain/99 notin (10.10.100.1, tick.tack.clock)",
            [("0.1.2.domain/99", NOT_IN, ("10.10.100.1", "tick.tack.clock"))],
        ),
        ("foo  in\t (abc)", [("foo", IN, ("abc",))]),
        ("x notin\n (abc)", [("x", NOT_IN, ("abc",))]),
        ("x  notin\t\t(abc,def)", [("x", NOT_IN, ("abc", "def"))]),
        ("x in (abc,)", [("x", IN, ("", "abc"))]),
        ("x in ()", [("x", IN, ("",))]),
        (
            "x notin (abc,,def),bar,z in (),w",
            [
                ("bar", EXISTS, ()),
                ("w", EXISTS, ()),
                ("x", NOT_IN, ("", "abc", "def")),
                ("z", IN, ("",)),
            ],
        ),
        ("x,y in (a)", [("x", EXISTS, ()), ("y", IN, ("a",))]),
        ("x=a,y!=b", [("x", EQUALS, ("a",)), ("y", NOT_EQUALS, ("b",))]),
        ("x notin ( )", [("x", NOT_IN, ("",))]),
        ("x notin (, a)", [("x", NOT_IN, ("", "a"))]),
        ("a ", [("a", EXISTS, ())]),
        ("a in (x,y,notin, z,in)", [("a", IN, ("in", "notin", "x", "y", "z"))]),
        ("in in (in)", [("in", IN, ("in",))]),
        ("!a,b==c", [("a", DOES_NOT_EXIST, ()), ("b", "==", ("c",))]),
        # Go's lexer reads a NUL byte as end of input: inside a token it ends the
        # token, at the start of one it ends the selector.
        ("a=b\x00,c", [("a", EQUALS, ("b",)), ("c", EXISTS, ())]),
        ("a=b \x00 ((", [("a", EQUALS, ("b",))]),
    ],
)
def test_set_selector_parser(s: str, reqs: list[tuple[str, str, tuple[str, ...]]]) -> None:
    sel = parse_label_selector(s)
    assert [(r.key, r.operator, r.values) for r in sel.requirements] == reqs


@pytest.mark.parametrize(
    "s",
    [
        "x,,y",
        ",x,y",
        "x nott in (y)",
        "a in (xyz),",
        "a in (xyz)b notin ()",
        "a in (xyz abc)",
        "a notin(",
        "a (",
        "(",
    ],
)
def test_set_selector_parser_rejects(s: str) -> None:
    with pytest.raises(SelectorError):
        parse_label_selector(s)


_KEY_REGEX_ERR = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
    "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
_VALUE_REGEX_ERR = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)


@pytest.mark.parametrize(
    ("s", "message"),
    [
        ("a in", "unable to parse requirement: found '' expected: '('"),
        ("a in (", "unable to parse requirement: found '', expected: ',', ')' or identifier"),
        ("a b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"),
        ("a in (b c)", "unable to parse requirement: found 'c', expected: ',' or ')'"),
        ("a in (b,=)", "unable to parse requirement: found '=', expected: ',', or identifier"),
        ("a=(b)", "unable to parse requirement: found '(', expected: identifier"),
        ("!", "unable to parse requirement: found '', expected: identifier"),
        ("a=b c", "found 'c', expected: ',' or 'end of string'"),
        (",a", "found ',', expected: !, identifier, or 'end of string'"),
        ("a,", "found '', expected: identifier after ','"),
        ("a,=", "found '=', expected: identifier after ','"),
        (
            "x>a",
            "unable to parse requirement: values[0]: Invalid value: \"a\": "
            "for 'Gt', 'Lt' operators, the value must be an integer",
        ),
        ("-bad", f'unable to parse requirement: <nil>: Invalid value: "-bad": {_KEY_REGEX_ERR}'),
        (
            "a/b/c",
            'unable to parse requirement: <nil>: Invalid value: "a/b/c": a qualified name must '
            "consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
            "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
            "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS "
            "subdomain prefix and '/' (e.g. 'example.com/MyName')",
        ),
        (
            "/a",
            'unable to parse requirement: <nil>: Invalid value: "/a": prefix part must be non-empty',
        ),
        (
            "Example.com/a",
            'unable to parse requirement: <nil>: Invalid value: "Example.com/a": prefix part a '
            "lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' "
            "or '.', and must start and end with an alphanumeric character (e.g. 'example.com', "
            "regex used for validation is "
            "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
        ),
        (
            "k" * 64,
            f'unable to parse requirement: <nil>: Invalid value: "{"k" * 64}": '
            "name part must be no more than 63 characters",
        ),
        (
            "app=-web",
            f'unable to parse requirement: values[0][app]: Invalid value: "-web": {_VALUE_REGEX_ERR}',
        ),
        (
            "app in (ok,-x)",
            f'unable to parse requirement: values[0][app]: Invalid value: "-x": {_VALUE_REGEX_ERR}',
        ),
        (
            "app in (ok,x-)",
            f'unable to parse requirement: values[1][app]: Invalid value: "x-": {_VALUE_REGEX_ERR}',
        ),
        (
            "a>x-",
            "unable to parse requirement: [values[0]: Invalid value: \"x-\": for 'Gt', 'Lt' "
            f'operators, the value must be an integer, values[0][a]: Invalid value: "x-": '
            f"{_VALUE_REGEX_ERR}]",
        ),
        (
            'a="q"',
            f'unable to parse requirement: values[0][a]: Invalid value: "\\"q\\"": {_VALUE_REGEX_ERR}',
        ),
    ],
)
def test_error_messages_match_kube(s: str, message: str) -> None:
    with pytest.raises(SelectorError) as ei:
        parse_label_selector(s)
    assert ei.value.message == message
    assert str(ei.value) == message


def test_error_is_400_bad_request() -> None:
    with pytest.raises(SelectorError) as ei:
        parse_label_selector("a in")
    err = ei.value.api_error()
    assert (err.code, err.reason) == (400, "BadRequest")
    assert err.status()["message"] == ei.value.message


def test_value_too_long() -> None:
    with pytest.raises(SelectorError, match="must be no more than 63 characters"):
        parse_label_selector("a=" + "v" * 64)
    assert parse_label_selector("a=" + "v" * 63).requirements[0].values == ("v" * 63,)


def test_non_ascii_is_rejected_with_go_quoting() -> None:
    with pytest.raises(SelectorError) as ei:
        parse_label_selector("app=ünï\x01")
    assert 'Invalid value: "ünï\\x01"' in ei.value.message


# --- label selector: canonical string ---------------------------------------------


@pytest.mark.parametrize(
    ("s", "canonical"),
    [
        ("b=2, a=1", "a=1,b=2"),
        ("tier in (web, api), app", "app,tier in (api,web)"),
        ("x in (b,a,b)", "x in (a,b)"),
        ("x notin (a)", "x notin (a)"),
        ("! x , y == z", "!x,y==z"),
        ("x in (,a)", "x in (,a)"),
        ("x<10", "x<10"),
    ],
)
def test_canonical_string(s: str, canonical: str) -> None:
    sel = parse_label_selector(s)
    assert str(sel) == canonical
    assert parse_label_selector(canonical) == sel


# --- label selector: matching -----------------------------------------------------


@pytest.mark.parametrize(
    ("s", "labels", "want"),
    [
        ("", {}, True),
        ("", None, True),
        ("a=b", {"a": "b"}, True),
        ("a==b", {"a": "b"}, True),
        ("a=b", {"a": "c"}, False),
        ("a=b", {}, False),
        ("a!=b", {}, True),
        ("a!=b", {"a": "b"}, False),
        ("a!=b", {"a": "c"}, True),
        ("a in (x,y)", {"a": "y"}, True),
        ("a in (x,y)", {"a": "z"}, False),
        ("a in (x,y)", None, False),
        ("a notin (x,y)", {"a": "z"}, True),
        ("a notin (x,y)", {}, True),
        ("a notin (x,y)", {"a": "x"}, False),
        ("a", {"a": ""}, True),
        ("a", {"b": "a"}, False),
        ("!a", {"b": "a"}, True),
        ("!a", {"a": ""}, False),
        ("a=", {"a": ""}, True),
        ("a in ()", {"a": ""}, True),
        ("a in ()", {}, False),
        ("a>3", {"a": "4"}, True),
        ("a>3", {"a": "3"}, False),
        ("a<3", {"a": "-1"}, True),
        ("a<3", {"a": "x"}, False),
        ("a>3", {}, False),
        ("a=b,c", {"a": "b", "c": "d"}, True),
        ("a=b,c", {"a": "b"}, False),
    ],
)
def test_matches(s: str, labels: dict[str, str] | None, want: bool) -> None:
    assert parse_label_selector(s).matches(labels) is want


def test_empty_and_nothing() -> None:
    assert parse_label_selector("").empty
    assert LabelSelector.everything().empty
    assert LabelSelector().matches({"anything": "x"})
    assert not parse_label_selector("a").empty
    nothing = LabelSelector.nothing()
    assert not nothing.empty
    assert not nothing.matches({})
    assert str(nothing) == ""


def test_requires_exact_match() -> None:
    sel = parse_label_selector("a=1,b in (2),c in (3,4),d!=5")
    assert sel.requires_exact_match("a") == "1"
    assert sel.requires_exact_match("b") == "2"
    assert sel.requires_exact_match("c") is None
    assert sel.requires_exact_match("d") is None
    assert sel.requires_exact_match("zzz") is None


def test_from_set() -> None:
    sel = LabelSelector.from_set({"b": "2", "a": "1"})
    assert str(sel) == "a=1,b=2"
    assert sel.matches({"a": "1", "b": "2", "c": "3"})
    assert LabelSelector.from_set(None).empty


def test_requirement_str() -> None:
    assert str(Requirement("k", IN, ("b", "a"))) == "k in (a,b)"
    assert str(Requirement("k", DOES_NOT_EXIST)) == "!k"


# --- metav1.LabelSelector spec ------------------------------------------------------


def test_spec_none_matches_nothing_empty_matches_everything() -> None:
    assert not label_selector_from_spec(None).matches({})
    assert not label_selector_from_spec(None).matches({"a": "b"})
    assert label_selector_from_spec({}).matches({"a": "b"})
    assert label_selector_from_spec({}).empty
    assert label_selector_from_spec({"matchLabels": {}, "matchExpressions": []}).empty
    assert selector_spec_to_string(None) == ""
    assert selector_spec_to_string({}) == ""


def test_spec_to_string_like_scale_status_selector() -> None:
    spec = {
        "matchLabels": {"app": "web"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["b", "a"]},
            {"key": "env", "operator": "NotIn", "values": ["prod"]},
            {"key": "canary", "operator": "DoesNotExist"},
            {"key": "team", "operator": "Exists"},
        ],
    }
    assert selector_spec_to_string(spec) == "app=web,!canary,env notin (prod),team,tier in (a,b)"
    sel = label_selector_from_spec(spec)
    assert sel.matches({"app": "web", "tier": "a", "team": "x", "env": "dev"})
    assert not sel.matches({"app": "web", "tier": "a", "team": "x", "canary": "1"})
    assert not sel.matches({"app": "web", "tier": "c", "team": "x"})
    # the string form parses back to an equivalent selector
    assert str(parse_label_selector(str(sel))) == str(sel)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"matchExpressions": [{"key": "a", "operator": "Equals", "values": ["x"]}]},
            '"Equals" is not a valid label selector operator',
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "In"}]},
            "values: Invalid value: []string(nil): for 'in', 'notin' operators, values set can't be empty",
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "NotIn", "values": []}]},
            "values: Invalid value: []string(nil): for 'in', 'notin' operators, values set can't be empty",
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x", "y"]}]},
            'values: Invalid value: []string{"x", "y"}: values set must be empty for exists and does not exist',
        ),
        (
            {"matchLabels": {"-a": "b"}},
            f'key: Invalid value: "-a": {_KEY_REGEX_ERR}',
        ),
        (
            {"matchLabels": {"a": "b c"}},
            f'values[0][a]: Invalid value: "b c": {_VALUE_REGEX_ERR}',
        ),
        (
            {"matchExpressions": [{"key": "-a", "operator": "In", "values": ["-b"]}]},
            f'[key: Invalid value: "-a": {_KEY_REGEX_ERR}, '
            f'values[0][-a]: Invalid value: "-b": {_VALUE_REGEX_ERR}]',
        ),
    ],
)
def test_spec_errors(spec: dict, message: str) -> None:
    with pytest.raises(SelectorError) as ei:
        label_selector_from_spec(spec)
    assert ei.value.message == message


@pytest.mark.parametrize(
    "spec",
    [
        "app=web",
        {"matchLabels": ["a"]},
        {"matchLabels": {"a": 1}},
        {"matchExpressions": {"key": "a"}},
        {"matchExpressions": ["a"]},
        {"matchExpressions": [{"key": "a", "operator": "In", "values": "x"}]},
        {"matchExpressions": [{"key": 1, "operator": "Exists"}]},
    ],
)
def test_spec_malformed_raises_selector_error(spec: object) -> None:
    with pytest.raises(SelectorError):
        label_selector_from_spec(spec)  # type: ignore[arg-type]


# --- field selectors ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("s", "reqs", "canonical"),
    [
        ("", [], ""),
        ("a=avalue", [("a", "=", "avalue")], "a=avalue"),
        (
            "c!=cvalue,b==bvalue,a=avalue",
            [("a", "=", "avalue"), ("b", "=", "bvalue"), ("c", "!=", "cvalue")],
            "a=avalue,b=bvalue,c!=cvalue",
        ),
        ("a=a,", [("a", "=", "a")], "a=a"),
        (",a=a", [("a", "=", "a")], "a=a"),
        # terms sort as raw text, and "2" sorts before "="
        ("k=\\,,k2=v2", [("k2", "=", "v2"), ("k", "=", ",")], "k2=v2,k=\\,"),
        ("k=\\\\,k2=v2", [("k2", "=", "v2"), ("k", "=", "\\")], "k2=v2,k=\\\\"),
        ("k=\\\\\\,,a=v2", [("a", "=", "v2"), ("k", "=", "\\,")], "a=v2,k=\\\\\\,"),
        ("k=\\=", [("k", "=", "=")], "k=\\="),
        ("함=수,목=록", [("목", "=", "록"), ("함", "=", "수")], "목=록,함=수"),
        ("spec.nodeName=", [("spec.nodeName", "=", "")], "spec.nodeName="),
        (" a = b ", [(" a ", "=", " b ")], " a = b "),
        ("=x", [("", "=", "x")], "=x"),
        ("a!==b", [("a", "!=", "=b")], None),
    ],
)
def test_field_selector_parse(s: str, reqs: list[tuple[str, str, str]], canonical: str | None) -> None:
    if canonical is None:
        with pytest.raises(SelectorError):
            parse_field_selector(s)
        return
    sel = parse_field_selector(s)
    assert list(sel.requirements) == reqs
    assert str(sel) == canonical
    assert parse_field_selector(str(sel)) == sel


@pytest.mark.parametrize(
    ("s", "message"),
    [
        ("a", "invalid selector: 'a'; can't understand 'a'"),
        ("x=1,b", "invalid selector: 'x=1,b'; can't understand 'b'"),
        ("k=\\a", "invalid field selector: invalid escape sequence: \\a"),
        ("k=\\", "invalid field selector: invalid escape sequence: \\"),
        ("k=\\\\\\", "invalid field selector: invalid escape sequence: \\"),
        ("a==b=c", "invalid field selector: unescaped character in value: 61"),
        ("a=b\\,c,d", "invalid selector: 'a=b\\,c,d'; can't understand 'd'"),
    ],
)
def test_field_selector_errors(s: str, message: str) -> None:
    with pytest.raises(SelectorError) as ei:
        parse_field_selector(s)
    assert ei.value.message == message


def test_field_selector_matches_and_exact() -> None:
    sel = parse_field_selector("status.phase!=Failed,spec.nodeName=n1")
    assert sel.matches({"spec.nodeName": "n1", "status.phase": "Running"})
    assert not sel.matches({"spec.nodeName": "n1", "status.phase": "Failed"})
    assert not sel.matches({"spec.nodeName": "n2"})
    assert sel.exact("spec.nodeName") == "n1"
    assert sel.exact("status.phase") is None
    assert sel.exact("metadata.name") is None
    assert sel.fields() == ["spec.nodeName", "status.phase"]
    # a missing field is "": `spec.nodeName=` selects unscheduled pods
    assert parse_field_selector("spec.nodeName=").matches({})
    assert not parse_field_selector("spec.nodeName!=").matches({})
    assert parse_field_selector("").empty
    assert FieldSelector().matches({"a": "b"})


def test_check_fields() -> None:
    sel = parse_field_selector("metadata.name=x,spec.nodeName=n")
    check_fields(sel, {"metadata.name", "metadata.namespace", "spec.nodeName"}, "pods")
    with pytest.raises(SelectorError) as ei:
        check_fields(parse_field_selector("zeta=1,foo=bar"), {"metadata.name"}, "pods")
    assert ei.value.message == "field label not supported: foo"  # first in sorted order
    assert ei.value.resource == "pods"
    err = ei.value.api_error()
    assert (err.code, err.reason, err.message) == (400, "BadRequest", "field label not supported: foo")
    with pytest.raises(SelectorError) as ei:
        check_fields(
            parse_field_selector("spec.replicas=1"),
            {"metadata.name", "metadata.namespace"},
            "deployments",
            meta_only_message=True,
        )
    assert ei.value.message == (
        '"spec.replicas" is not a known field selector: only "metadata.name", "metadata.namespace"'
    )


# --- properties ----------------------------------------------------------------------

_selector_alphabet = st.sampled_from(list("ab=!(),<> \t\n\x00inotz-_./\\1") + ["in", "notin", "é"])
_selectorish = st.lists(_selector_alphabet, max_size=40).map("".join)


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(max_size=60), _selectorish))
def test_label_parser_only_raises_selector_error(s: str) -> None:
    try:
        sel = parse_label_selector(s)
    except SelectorError as e:
        assert e.message
        return
    # whatever parses, prints canonically and round-trips
    canonical = str(sel)
    assert parse_label_selector(canonical) == sel
    assert str(parse_label_selector(canonical)) == canonical
    sel.matches({"a": "b", "in": ""})


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(max_size=60), _selectorish))
def test_field_parser_only_raises_selector_error(s: str) -> None:
    try:
        sel = parse_field_selector(s)
    except SelectorError as e:
        assert e.message
        return
    # same terms; the order may differ since "==" is printed as "="
    assert sorted(parse_field_selector(str(sel)).requirements) == sorted(sel.requirements)
    sel.matches({"a": "b"})


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)
_expr = st.fixed_dictionaries(
    {},
    optional={
        "key": st.one_of(st.sampled_from(["a", "k8s.io/a", "-x", ""]), _json),
        "operator": st.one_of(
            st.sampled_from(["In", "NotIn", "Exists", "DoesNotExist", "in", "Gt"]), _json
        ),
        "values": st.one_of(st.lists(st.sampled_from(["x", "", "y z", "1"]), max_size=3), _json),
    },
)
_spec = st.one_of(
    st.none(),
    _json,
    st.fixed_dictionaries(
        {},
        optional={
            "matchLabels": st.one_of(
                st.dictionaries(st.sampled_from(["a", "b/c", "-"]), st.sampled_from(["x", "", "-"])),
                _json,
            ),
            "matchExpressions": st.one_of(st.lists(_expr, max_size=3), _json),
        },
    ),
)


@settings(max_examples=500, deadline=None)
@given(_spec)
def test_spec_only_raises_selector_error(spec: object) -> None:
    try:
        sel = label_selector_from_spec(spec)  # type: ignore[arg-type]
    except SelectorError as e:
        assert e.message
        return
    # Go prints duplicate spec values as given ("a in (x,x)"), so the string
    # form of a spec selector is not always re-parseable; it must not fail.
    str(sel)
    sel.matches({"a": "x"})
