# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from ansible_collections.azure_hpc.cache.plugins.module_utils._base.errors import (
    ArmError,
    HpcCacheError,
    OperationFailed,
    ValidationError,
    failure_of,
    redact,
)

JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"


def test_redact_hides_bearer_tokens_jwts_and_given_secrets():
    text = redact("Authorization: Bearer abc.DEF-123 then %s and pa55word!" % JWT, ["pa55word!"])
    assert text == "Authorization: Bearer <redacted> then <redacted> and <redacted>"


def test_redact_leaves_short_secrets_alone():  # a one-letter "secret" would shred every message
    assert redact("a b c", ["a", ""]) == "a b c"


def test_validation_error_names_the_option_and_the_rule():
    exc = ValidationError("wait_timeout", "0 must be an integer greater than 0")
    assert str(exc) == "wait_timeout: 0 must be an integer greater than 0" and exc.option == "wait_timeout"


def test_arm_error_carries_code_status_and_request_ids_into_the_result():
    exc = ArmError(409, "Conflict", "busy", target="c1", request_id="r-1", service_request_id="s-1")
    assert str(exc) == "Conflict (HTTP 409): busy [target: c1] (client request id r-1)"
    assert exc.result == {"error": {"code": "Conflict", "message": "busy", "target": "c1"}, "status_code": 409,
                          "request_id": "r-1", "service_request_id": "s-1"}


def test_operation_failed_says_what_failed_and_why():
    failed = OperationFailed("Failed", "TargetDown", "nfs down", subject="the suspend operation", polls=2)
    assert str(failed) == "The suspend operation failed: TargetDown: nfs down"
    assert failed.result["status"] == "Failed" and failed.result["polls"] == 2
    assert str(OperationFailed("Canceled", None, None)) == "The operation was canceled"


def test_failure_of_an_unexpected_error_has_no_traceback_and_no_secret():
    msg, result = failure_of(KeyError("token %s" % JWT), ["x"])
    assert msg.startswith("Unexpected KeyError: ") and JWT not in msg and result == {}


def test_failure_of_a_known_error_keeps_its_result_but_never_a_msg_key():
    msg, result = failure_of(HpcCacheError("it broke", msg="shadow", status="InProgress"))
    assert msg == "it broke" and result == {"status": "InProgress"}
