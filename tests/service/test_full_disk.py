"""The one place the service writes to disk: uploads over 1 MB, spooled to the temporary folder."""

import tempfile

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from tests.helpers.disk import small_disk
from tests.helpers.images import garment, png_bytes


@pytest.mark.parametrize("options", ["size=512k", "size=512k,ro"])
def test_an_upload_that_cannot_be_spooled_gets_503_and_the_service_goes_on(
    index_dir, tmp_path, monkeypatch, options
):
    large = png_bytes(garment(5)) + b"\0" * (2 << 20)  # over the 1 MB the parser keeps in memory
    with small_disk(tmp_path / "tmp", options) as disk:
        monkeypatch.setattr(tempfile, "tempdir", str(disk))
        with TestClient(create_app(Settings(index=index_dir))) as client:
            response = client.post("/search", files={"file": ("big.png", large, "image/png")})
            assert response.status_code == 503
            assert response.headers["retry-after"] == "30"
            assert response.json() == {
                "detail": "the service could not store the upload (its temporary folder is "
                "full or not writable); try again later"
            }
            small = client.post("/search", files={"file": ("q.png", png_bytes(garment(5)))})
            assert small.status_code == 200  # small uploads stay in memory
