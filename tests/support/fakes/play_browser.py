"""A stand-in for the user's browser, started by Python's `webbrowser` as `$BROWSER URL`.

Like a real browser launcher it returns at once and does the work in the background: it opens the sign-in
URL (Google's consent page, which redirects at once) and follows the redirect to the tool's loopback server.
`XOROMAIL_TEST_CA` names the CA that the fake Google's certificate comes from.
"""

from __future__ import annotations

import os
import subprocess
import sys


def visit(url: str) -> None:
    import requests

    consent = requests.get(url, verify=os.environ["XOROMAIL_TEST_CA"], allow_redirects=False, timeout=10)
    requests.get(consent.headers["Location"], timeout=10)


if __name__ == "__main__":
    if sys.argv[1] == "--visit":
        visit(sys.argv[2])
    else:
        subprocess.Popen([sys.executable, __file__, "--visit", sys.argv[1]], start_new_session=True)
