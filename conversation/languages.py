"""Which language a reply is in, what the LLM is told, and what a voice can speak."""
from __future__ import annotations

from tts.piper import PiperVoiceSettings
from tts.xtts_settings import UnsupportedLanguageError, normalize_language

# Whisper's codes for the languages people most often talk to it in; others are shown as their code.
NAMES = {
    "en": "English", "es": "Spanish", "fr": "French", "de": "German", "it": "Italian", "pt": "Portuguese",
    "pl": "Polish", "tr": "Turkish", "ru": "Russian", "nl": "Dutch", "cs": "Czech", "ar": "Arabic",
    "zh": "Chinese", "ja": "Japanese", "hu": "Hungarian", "ko": "Korean", "hi": "Hindi", "sv": "Swedish",
    "da": "Danish", "no": "Norwegian", "fi": "Finnish", "el": "Greek", "uk": "Ukrainian", "ro": "Romanian",
    "he": "Hebrew", "id": "Indonesian", "vi": "Vietnamese", "th": "Thai", "ca": "Catalan",
}  # fmt: skip


def base_code(code: str) -> str:
    """'en-US', 'en_us' and 'EN' are all 'en'."""
    return code.strip().lower().replace("_", "-").split("-")[0]


def language_name(code: str) -> str:
    return NAMES.get(base_code(code), code)


def reply_language(persona_language: str, detected: str | None) -> str | None:
    """The persona's language, or with 'auto' the one the user spoke (None when not yet known)."""
    return detected if persona_language == "auto" else persona_language


def reply_instruction(persona_language: str, language: str | None) -> list[dict[str, str]]:
    """A system line asking for the reply language, when it is not simply English.

    With 'auto' it is always sent, so the LLM follows the user back to English too.
    """
    if language is None or (persona_language != "auto" and base_code(language) == "en"):
        return []
    return [{"role": "system", "content": f"Reply in {language_name(language)}."}]


def voice_mismatch(voice_name: str, voice: object, language: str | None) -> str | None:
    """Why `voice` cannot speak `language`, in one line; None when it can."""
    if language is None:
        return None
    if isinstance(voice, PiperVoiceSettings):
        if base_code(voice.language) == base_code(language):
            return None
        return (f"the Piper voice {voice_name!r} speaks {language_name(voice.language)}, not "
                f"{language_name(language)}; add a Piper voice for {language} or use an XTTS voice")
    try:
        normalize_language(language)
    except UnsupportedLanguageError as error:
        return f"{error}; the voice {voice_name!r} speaks {language_name(voice.language)} instead"
    return None
