"""Name/label format checks return apimachinery's exact messages."""

from __future__ import annotations

from cloudlet.resources.validation import (
    is_c_identifier,
    is_config_map_key,
    is_dns1035_label,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_env_var_name,
    is_path_segment_name,
    is_qualified_name,
    is_relaxed_env_var_name,
    is_valid_label_value,
    is_valid_percent,
    is_valid_port_name,
    name_is_dns_subdomain,
    regex_error,
)

SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
    "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
QUALIFIED_NAME_PART_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
    "an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)


def test_regex_error_formats_examples_like_go() -> None:
    assert regex_error("msg", "x") == "msg (regex used for validation is 'x')"
    assert regex_error("msg", "x", "a", "b") == "msg (e.g. 'a',  or 'b', regex used for validation is 'x')"


def test_dns1123_subdomain() -> None:
    assert is_dns1123_subdomain("example.com") == []
    assert is_dns1123_subdomain("Example") == [SUBDOMAIN_MSG]
    assert is_dns1123_subdomain("a" * 254) == ["must be no more than 253 characters"]
    assert is_dns1123_subdomain("abc\n") == [SUBDOMAIN_MSG]  # no trailing-newline loophole


def test_dns1123_label() -> None:
    assert is_dns1123_label("my-name") == []
    assert is_dns1123_label("a.b") == ["must not contain dots"]
    assert is_dns1123_label("-a") == [LABEL_MSG]
    assert is_dns1123_label("a" * 64) == ["must be no more than 63 characters"]


def test_dns1035_label() -> None:
    assert is_dns1035_label("web") == []
    assert is_dns1035_label("1web") == [
        "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
        "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
        "regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
    ]


def test_qualified_name() -> None:
    assert is_qualified_name("app.kubernetes.io/name") == []
    assert is_qualified_name("My_Name.1") == []
    assert is_qualified_name("-bad") == [QUALIFIED_NAME_PART_MSG]
    assert is_qualified_name("/x") == ["prefix part must be non-empty"]
    assert is_qualified_name("Example.com/x") == ["prefix part " + SUBDOMAIN_MSG]
    assert is_qualified_name("") == ["name part must be non-empty", QUALIFIED_NAME_PART_MSG]
    assert is_qualified_name("a/b/c")[0].startswith("a qualified name must consist of alphanumeric")
    assert is_qualified_name("a" * 64) == ["name part must be no more than 63 characters"]


def test_label_value() -> None:
    assert is_valid_label_value("") == []
    assert is_valid_label_value("v1.2_3") == []
    assert is_valid_label_value("-x") == [
        "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
        "and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or "
        "'12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
    ]


def test_identifiers_and_env_names() -> None:
    assert is_c_identifier("MY_VAR") == []
    assert is_c_identifier("1x")[0].startswith("a valid C identifier must start with alphabetic character or '_'")
    assert is_env_var_name("my.env-name") == []
    assert is_env_var_name("1A")[0].startswith("a valid environment variable name must consist of alphabetic")
    assert is_env_var_name("..x") == ["must not start with '..'"]
    assert is_relaxed_env_var_name("1A") == []
    assert is_relaxed_env_var_name("A=B") == [
        "a valid environment variable name must consist only of printable ASCII characters other than '='"
    ]
    assert is_relaxed_env_var_name("") == ["environment variable name must be non-empty"]


def test_misc_formats() -> None:
    assert is_config_map_key("a.b_C-1") == []
    assert is_config_map_key("a/b")[0].startswith("a valid config key must consist of alphanumeric characters")
    assert is_valid_port_name("http") == []
    assert is_valid_port_name("8080") == ["must contain at least one letter (a-z)"]
    assert is_valid_port_name("a--b") == ["must not contain consecutive hyphens"]
    assert is_valid_percent("25%") == []
    assert is_valid_percent("25") != []
    assert is_path_segment_name("..") == ["may not be '..'"]
    assert is_path_segment_name("a/b%") == ["may not contain '/'", "may not contain '%'"]


def test_generate_name_prefix_allows_trailing_dash() -> None:
    assert name_is_dns_subdomain("web-", prefix=True) == []
    assert name_is_dns_subdomain("web-") == [SUBDOMAIN_MSG]
