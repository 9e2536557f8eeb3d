"""What the sender's domain says in DNS: the provider its MX implies, and whether SPF, DKIM and DMARC let
its mail arrive. Importing this package is cheap: dnspython and checkdmarc load only inside the lookups.

- `report.check_domain` runs every check and returns a `DomainReport` (for `xoromail check-domain`).
- `providers.provider_for_email` names the service an address's MX implies (for setup; never raises).
- `notes.deliverability_notes` turns problems into notes (for validate; never raises).
- `certs.certificate_expiry_note` warns of a server certificate that expires within 30 days.
"""
