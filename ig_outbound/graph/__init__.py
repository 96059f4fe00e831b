"""Talking to the Graph API: the Send API client, error classification, usage headers."""

from ig_outbound.graph.client import GraphClient, GraphClientError, GraphResult
from ig_outbound.graph.errors import (
    ERROR_TABLE,
    MALFORMED_SUCCESS,
    SUCCESS,
    THROTTLE_CODES,
    TOKEN_MALFORMED,
    TRANSIENT_CAP,
    Classification,
    ErrorClass,
    GraphError,
    TransportFailure,
    classify,
    classify_transport,
)
from ig_outbound.graph.usage import (
    AppUsage,
    BucUsage,
    max_usage_pct,
    parse_app_usage,
    parse_buc_usage,
    regain_access_s,
)

__all__ = [
    "ERROR_TABLE",
    "MALFORMED_SUCCESS",
    "SUCCESS",
    "THROTTLE_CODES",
    "TOKEN_MALFORMED",
    "TRANSIENT_CAP",
    "AppUsage",
    "BucUsage",
    "Classification",
    "ErrorClass",
    "GraphClient",
    "GraphClientError",
    "GraphError",
    "GraphResult",
    "TransportFailure",
    "classify",
    "classify_transport",
    "max_usage_pct",
    "parse_app_usage",
    "parse_buc_usage",
    "regain_access_s",
]
