"""Where secrets are kept: the OS keyring behind a policy (keyrings.py), the encrypted file (encrypted.py).

`credentials.current_store()` picks one; the rest of the code uses `credentials` only.
"""
