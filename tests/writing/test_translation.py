"""Translation: refused without a model server, plumbing proven against a real one."""

from __future__ import annotations

import pytest

from rathaus.ai.llm import OpenAICompatibleModel
from rathaus.ai.registry import get_language_model
from rathaus.core.config import load_settings
from rathaus.writing import translate


def test_bundled_model_is_refused_with_a_clear_message():
    reason = translate.unavailable_reason("local")
    assert "nicht zuverlässig" in reason and "7 Mrd." in reason and "vLLM" in reason
    assert "RATHAUS_LLM__BACKEND=openai" in reason
    with pytest.raises(translate.TranslationUnavailableError) as info:
        translate.translate("Hallo", "en", model=object(), backend="local")
    assert "docs/models.md" in info.value.message
    assert "kein Sprachmodell" in translate.unavailable_reason("none")
    assert translate.unavailable_reason("openai") is None


def test_bad_requests():
    with pytest.raises(translate.TranslationInputError):
        translate.check_request("Text", "xx")
    with pytest.raises(translate.TranslationInputError):
        translate.check_request("  ", "en")


def test_lost_numbers_follow_the_target_locale():
    source = (
        "Die Gebühr beträgt 1.471,60 € und ist bis zum 21.11.2026 zu zahlen (AZ MS-2026-000123)."
    )
    english = "The fee is €1,471.60, payable by 11/21/2026 (ref. MS-2026-000123)."
    assert translate.lost_numbers(source, english) == []
    arabic_digits = "الرسوم ١٤٧١٫٦٠ € حتى 21.11.2026 MS-2026-000123"
    assert translate.lost_numbers(source, arabic_digits) == []
    assert translate.lost_numbers(source, "The fee is €1,400.60 by 11/21/2026 MS-2026-000123") == [
        "1.471,60"
    ]


@pytest.mark.model
@pytest.mark.slow
def test_translation_through_a_real_openai_compatible_server(llama_server, tmp_path):
    settings = load_settings(
        mode="demo",
        data_dir=tmp_path,
        llm={
            "backend": "openai",
            "base_url": llama_server,
            "model": "bundled",
            "timeout_s": 300,
            # The text is intern by default: only a server of the municipality's own may see it.
            "location": "eigener_server",
        },
    )
    model = get_language_model(settings)
    assert isinstance(model, OpenAICompatibleModel)
    result = translate.translate(
        "Ihr Antrag vom 21.11.2026 ist eingegangen.", "en", model=model, backend="openai"
    )
    assert result.text.strip()  # quality is not asserted: the bundled model is small
    assert result.target == "en" and result.model
    assert "Maschinelle Übersetzung ins Englisch" in result.label
    assert isinstance(result.lost, list)
