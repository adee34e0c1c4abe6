"""The pure parts of the phone <-> api protocol (docs/protocol.md).

Modules: `envelope` (binary upload envelope v1), `hpke` (RFC 9180 seal/open with the
canonical info), `signing` (Ed25519 request signatures, nonce replay), `keyring`
(server X25519 keys), `body` (content type, encoding, size limits), `retry_after`
(the Retry-After header), `errors`.
Imports only `cryptography` (and `zstandard` lazily), so the device SDK can share it.
"""
