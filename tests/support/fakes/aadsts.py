"""The Microsoft identity platform's error answers, as login.microsoftonline.com sends them (provider facts):
each AADSTS code's OAuth error, HTTP status and text, and the JSON body they come in. The fake server answers
with them; `explain`'s tests read the texts.
"""

from __future__ import annotations

from typing import Any

TENANT = "company.test"
CLIENT_ID = "5f6e7d8c-9b0a-4c1d-8e2f-3a4b5c6d7e8f"

AADSTS: dict[int, tuple[str, int, str]] = {
    65001: ("invalid_grant", 400, "AADSTS65001: The user or administrator has not consented to use the application "
            "with ID '{client}' named 'xoromail'. Send an interactive authorization request for this user and "
            "resource."),
    50076: ("invalid_grant", 400, "AADSTS50076: Due to a configuration change made by your administrator, or "
            "because you moved to a new location, you must use multi-factor authentication to access "
            "'00000003-0000-0000-c000-000000000000'."),
    53003: ("invalid_grant", 400, "AADSTS53003: Access has been blocked by Conditional Access policies. The access "
            "policy does not allow token issuance."),
    53000: ("invalid_grant", 400, "AADSTS53000: Device is not in required device state: compliant. Conditional "
            "Access policy requires a compliant device, and the device is not compliant. The user must enroll "
            "their device with an approved MDM provider like Intune."),
    700016: ("unauthorized_client", 400, "AADSTS700016: Application with identifier '{client}' was not found in "
             "the directory '{tenant}'. This can happen if the application has not been installed by the "
             "administrator of the tenant or consented to by any user in the tenant. You may have sent your "
             "authentication request to the wrong tenant."),
    90002: ("invalid_tenant", 400, "AADSTS90002: Tenant '{tenant}' not found. Check to make sure you have the "
            "correct tenant ID and are signing into the correct cloud."),
    7000215: ("invalid_client", 401, "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent "
              "in the request is the client secret value, not the client secret ID, for a secret added to app "
              "'{client}'."),
    7000222: ("invalid_client", 401, "AADSTS7000222: The provided client secret keys for app '{client}' are "
              "expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret"),
    70008: ("invalid_grant", 400, "AADSTS70008: The provided authorization code or refresh token has expired due "
            "to inactivity. Send a new interactive authorization request for this user and resource."),
    700082: ("invalid_grant", 400, "AADSTS700082: The refresh token has expired due to inactivity. The token was "
             "issued on 2026-08-01T08:00:00Z and was inactive for 90.00:00:00."),
}
PENDING = ("authorization_pending", "AADSTS70016: OAuth 2.0 device flow error. Authorization is pending. "
           "Continue polling.", 70016)


def aadsts_body(code: int, **values: str) -> tuple[int, dict[str, Any]]:
    error, status, text = AADSTS[code]
    description = text.format(client=values.get("client", CLIENT_ID), tenant=values.get("tenant", TENANT))
    return status, {"error": error, "error_codes": [code], "timestamp": "2026-12-01 09:00:00Z",
                    "error_description": description + "\r\nTrace ID: 3f1e\r\nCorrelation ID: 9a2b\r\n"
                                                       "Timestamp: 2026-12-01 09:00:00Z",
                    "trace_id": "3f1e", "correlation_id": "9a2b", "error_uri": f"{'https://login'}/error?code={code}"}
