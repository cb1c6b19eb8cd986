"""The CapabilityStatement (``GET /fhir/r4/metadata``): what this server reads, searches and
exports."""

from __future__ import annotations

from fhir.resources.R4B.capabilitystatement import CapabilityStatement

from server.fhir.search import MAX_COUNT


def capability_statement(base_url: str) -> CapabilityStatement:
    """The statement of the server at ``base_url`` (``…/fhir/r4``)."""
    search_count = {"name": "_count", "type": "number", "documentation": f"1–{MAX_COUNT}"}
    search_offset = {"name": "_offset", "type": "number"}
    by_patient = {"name": "patient", "type": "reference", "documentation": "required"}
    return CapabilityStatement.model_validate(
        {
            "resourceType": "CapabilityStatement",
            "status": "active",
            "date": "2026-12-03",
            "publisher": "isocheck",
            "kind": "instance",
            "instantiates": ["http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data"],
            "software": {"name": "isocheck"},
            "implementation": {
                "description": "isocheck home-isolation monitoring",
                "url": base_url,
            },
            # Served resources are built with the R4B models but use only elements that are the
            # same in R4 4.0.1 (docs/fhir.md), the version VN Core targets.
            "fhirVersion": "4.0.1",
            "format": ["application/fhir+json"],
            "rest": [
                {
                    "mode": "server",
                    "security": {
                        "description": "Bearer staff token (POST /api/v1/auth/token); results "
                        "are limited to the caller's area; every served record is audited."
                    },
                    "resource": [
                        {
                            "type": "Patient",
                            "interaction": [{"code": "read"}, {"code": "search-type"}],
                            "searchParam": [
                                {"name": "_lastUpdated", "type": "date"},
                                search_count,
                                search_offset,
                            ],
                        },
                        {
                            "type": "Observation",
                            "interaction": [{"code": "search-type"}],
                            "searchParam": [by_patient, search_count, search_offset],
                        },
                        {
                            "type": "EpisodeOfCare",
                            "interaction": [{"code": "search-type"}],
                            "searchParam": [by_patient],
                        },
                    ],
                    "operation": [
                        {
                            "name": "export",
                            "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export",
                        }
                    ],
                }
            ],
        }
    )
