"""Where secrets are kept: the OS keyring behind a policy (keyrings.py), the encrypted file (encrypted.py).

`credentials.current_store()` picks one; the rest of the code uses `credentials` only. owners.py records which
settings file a profile's secrets belong to (a guard for setup, disconnect and `relay users`; it reads and writes
through `credentials`).
"""
