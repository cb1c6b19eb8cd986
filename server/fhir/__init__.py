"""FHIR R4 mapping and bulk export of isocheck's records (issue 17); see docs/fhir.md."""
