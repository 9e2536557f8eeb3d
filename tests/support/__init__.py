"""What the tests share that is not a fixture: real local servers and fakes, sample data, one keyring-backed
store, one sender/ledger factory, the contract harnesses. The fixtures themselves are in tests/conftest.py;
tests/README.md says where each thing lives."""
