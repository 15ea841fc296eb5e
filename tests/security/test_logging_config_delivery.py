"""apply_delivery: each flag on records of each wire format; the caller's no-log opt-out;
what a record always keeps."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmtrail.record import InvocationRecord
from llmtrail.security.delivery import apply_delivery
from llmtrail.security.logging_config import DEFAULT, OFF, LoggingConfig, parse_put_body

IMAGE = "SU1BR0UtQ0FOQVJZ"  # base64 of IMAGE-CANARY
VIDEO = "VklERU8tQ0FOQVJZ"
AUDIO = "QVVESU8tQ0FOQVJZ"
DOC_BYTES = "RE9DLUNBTkFSWQ=="
TEXT = "TEXT-CANARY asks about the claim"
ANSWER = "ANSWER-CANARY says approved"


def configured(**flags: bool) -> LoggingConfig:
    body = {f"{name}DataDeliveryEnabled": on for name, on in flags.items()}
    return parse_put_body({"loggingConfig": body}).config


def record(operation: str, model: str, request: Any, response: Any, **extra: Any) -> dict:
    """A record as the gateway writes it: metadata, counts, cost, bodies."""
    return {
        "schemaType": "ModelInvocationLog",
        "schemaVersion": "1.0",
        "timestamp": "2026-12-06T10:00:00.000Z",
        "requestId": f"req-{operation}",
        "accountId": "123456789012",
        "region": "us-east-1",
        "identity": {"arn": "arn:aws:iam::123456789012:user/alice"},
        "operation": operation,
        "modelId": model,
        "requestMetadata": {"tenant_id": "acme", "application_name": "claims"},
        "input": {
            "inputContentType": "application/json",
            "inputBodyJson": request,
            "inputTokenCount": 25,
            "cacheReadInputTokenCount": 3,
        },
        "output": {
            "outputContentType": "application/json",
            "outputBodyJson": response,
            "outputTokenCount": 150,
        },
        "latencyMs": 1509,
        "timeToFirstTokenMs": 210,
        "status": "OK",
        "cost": {"inputUsd": "0.0001", "outputUsd": "0.002", "totalUsd": "0.0021"},
        "textCharacters": {"input": len(TEXT), "output": len(ANSWER)},
        "trace": {"traceId": "4bf92f3577b34da6a3ce929d0e0e4736", "spanId": "00f067aa0ba902b7"},
        **extra,
    }


def converse() -> dict:
    request = {
        "system": [{"text": "You are a claims assistant."}],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"text": TEXT},
                    {"image": {"format": "png", "source": {"bytes": IMAGE}}},
                    {
                        "document": {
                            "format": "pdf",
                            "name": "claim",
                            "source": {"bytes": DOC_BYTES},
                        }
                    },
                    {"video": {"format": "mp4", "source": {"bytes": VIDEO}}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "toolResult": {
                            "toolUseId": "t1",
                            "content": [{"image": {"format": "jpeg", "source": {"bytes": IMAGE}}}],
                        }
                    }
                ],
            },
        ],
    }
    response = {
        "output": {"message": {"role": "assistant", "content": [{"text": ANSWER}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 25, "outputTokens": 150},
    }
    return record("Converse", "amazon.nova-lite-v1:0", request, response)


def openai_chat() -> dict:
    request = {
        "model": "gpt-4o-audio-preview",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": TEXT},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{IMAGE}"}},
                    {"type": "input_audio", "input_audio": {"data": AUDIO, "format": "wav"}},
                    {"type": "file", "file": {"file_data": DOC_BYTES, "filename": "c.pdf"}},
                ],
            }
        ],
    }
    response = {
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": ANSWER,
                    "audio": {"id": "audio_1", "data": AUDIO, "transcript": ANSWER},
                },
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 28, "completion_tokens": 150},
    }
    return record("ChatCompletions", "openai/gpt-4o-audio-preview", request, response)


def anthropic_messages() -> dict:
    image = {"type": "base64", "media_type": "image/png", "data": IMAGE}
    request = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 512,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "image", "source": image},
                    {"type": "text", "text": TEXT},
                    {"type": "document", "source": {"type": "base64", "data": DOC_BYTES}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "t1",
                        "content": [{"type": "image", "source": image}],
                    }
                ],
            },
        ],
    }
    response = {"type": "message", "content": [{"type": "text", "text": ANSWER}]}
    return record("Messages", "anthropic/claude-sonnet-4-5", request, response)


def titan_image() -> dict:
    request = {"taskType": "TEXT_IMAGE", "textToImageParams": {"text": TEXT}}
    response = {"images": [IMAGE, IMAGE], "error": None}
    return record("InvokeModel", "amazon.titan-image-generator-v2:0", request, response)


def openai_embeddings() -> dict:
    vectors = [{"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3]} for i in range(3)]
    return record(
        "Embeddings",
        "openai/text-embedding-3-small",
        {"model": "text-embedding-3-small", "input": [TEXT, TEXT, TEXT]},
        {"object": "list", "data": vectors, "usage": {"prompt_tokens": 25}},
    )


def titan_embeddings() -> dict:
    return record(
        "InvokeModel",
        "amazon.titan-embed-text-v2:0",
        {"inputText": TEXT},
        {"embedding": [0.1, 0.2], "inputTextTokenCount": 25},
    )


FORMATS = [converse, openai_chat, anthropic_messages]
ALL = [*FORMATS, titan_image, openai_embeddings, titan_embeddings]


def without_bodies(doc: dict) -> dict:
    doc = copy.deepcopy(doc)
    doc.pop("delivery", None)
    for part, keys in (("input", ("inputBodyJson",)), ("output", ("outputBodyJson",))):
        for key in keys:
            doc[part].pop(key, None)
        for key in ("outputImageCount", "outputEmbeddingCount"):
            doc[part].pop(key, None)
    return doc


def text_of(doc: dict) -> str:
    return json.dumps(doc)


def content_lengths(body: Any) -> list[int]:
    return [len(m["content"]) for m in body["messages"]]


# -- everything delivered ---------------------------------------------------------------------


@pytest.mark.parametrize("make", ALL)
def test_the_default_and_a_config_with_every_flag_on_change_nothing(make: Any) -> None:
    for config in (DEFAULT, configured(), parse_put_body({"loggingConfig": {}}).config):
        doc = make()
        assert apply_delivery(doc, config) is False
        assert doc == make()


# -- text off, off state, no-log: no bodies, metadata and counts kept -------------------------


@pytest.mark.parametrize("make", [*FORMATS, titan_image])
@pytest.mark.parametrize(
    ("config", "no_log", "reason"),
    [
        (configured(text=False), False, "configuration"),
        (OFF, False, "logging-off"),
        (DEFAULT, True, "no-log"),
        (configured(image=False), True, "no-log"),
    ],
)
def test_bodies_withheld_keep_metadata_and_counts(
    make: Any, config: LoggingConfig, no_log: bool, reason: str
) -> None:
    doc, original = make(), make()
    assert apply_delivery(doc, config, no_log=no_log) is True
    assert "inputBodyJson" not in doc["input"] and "outputBodyJson" not in doc["output"]
    assert without_bodies(doc) == without_bodies(original)  # all else kept as it was
    assert doc["delivery"]["bodies"] == "withheld" and doc["delivery"]["reason"] == reason
    for canary in (TEXT, ANSWER, IMAGE, VIDEO, AUDIO):
        assert canary not in text_of(doc)
    InvocationRecord.from_dict(doc)  # still a valid record


def test_text_off_keeps_the_image_count_an_output_body_held() -> None:
    doc = titan_image()
    apply_delivery(doc, configured(text=False))
    assert doc["output"]["outputImageCount"] == 2


def test_offloaded_bodies_go_too() -> None:
    doc = converse()
    doc["input"]["inputBodyS3Path"] = "s3://llmtrail/AWSLogs/x/data/r_input.json.gz"
    del doc["input"]["inputBodyJson"]
    apply_delivery(doc, OFF)
    assert "inputBodyS3Path" not in doc["input"]


def test_a_record_without_bodies_is_left_alone() -> None:
    doc = converse()
    del doc["input"]["inputBodyJson"], doc["output"]["outputBodyJson"]
    before = copy.deepcopy(doc)
    assert apply_delivery(doc, OFF) is False
    assert doc == before


# -- no-log and allowNoLog ----------------------------------------------------------------------


def test_no_log_refused_when_the_workspace_forbids_it() -> None:
    config = replace(DEFAULT, allow_no_log=False)
    doc = converse()
    assert apply_delivery(doc, config, no_log=True) is False
    assert doc["input"]["inputBodyJson"] == converse()["input"]["inputBodyJson"]
    assert doc["delivery"] == {"noLog": "refused"}
    # the refusal is kept beside what the configuration itself withholds
    doc = converse()
    forbidding = replace(configured(image=False), allow_no_log=False)
    assert apply_delivery(doc, forbidding, no_log=True) is True
    assert doc["delivery"]["noLog"] == "refused" and doc["delivery"]["bodies"] == "partial"


def test_no_log_is_ignored_when_not_asked() -> None:
    doc = converse()
    assert apply_delivery(doc, replace(DEFAULT, allow_no_log=False)) is False
    assert "delivery" not in doc


# -- image, video, audio off: placeholders inside the kept body -----------------------------


@pytest.mark.parametrize("make", FORMATS)
def test_image_off_replaces_image_blocks_keeping_the_count(make: Any) -> None:
    doc, original = make(), make()
    assert apply_delivery(doc, configured(image=False)) is True
    body, before = doc["input"]["inputBodyJson"], original["input"]["inputBodyJson"]
    assert content_lengths(body) == content_lengths(before)
    assert IMAGE not in text_of(doc) and DOC_BYTES not in text_of(doc)
    assert TEXT in text_of(body) and ANSWER in text_of(doc["output"])
    assert doc["output"]["outputBodyJson"] == original["output"]["outputBodyJson"] or (
        make is openai_chat  # its output audio is not an image: unchanged as well
    )
    assert doc["delivery"]["bodies"] == "partial"
    assert doc["delivery"]["withheld"] == ["image"]
    assert doc["delivery"]["blocks"] == text_of(body).count('"llmtrail": "not delivered"')
    assert without_bodies(doc) == without_bodies(original)
    InvocationRecord.from_dict(doc)


def test_placeholders_keep_each_wire_formats_shape() -> None:
    doc = converse()
    apply_delivery(doc, configured(image=False))
    content = doc["input"]["inputBodyJson"]["messages"][0]["content"]
    assert content[1] == {"image": {"format": "png", "llmtrail": "not delivered"}}
    assert content[2] == {
        "document": {"format": "pdf", "name": "claim", "llmtrail": "not delivered"}
    }
    assert content[3]["video"]["source"] == {"bytes": VIDEO}  # video has its own flag
    doc = openai_chat()
    apply_delivery(doc, configured(image=False))
    parts = doc["input"]["inputBodyJson"]["messages"][0]["content"]
    assert parts[1] == {"type": "image_url", "image_url": {"llmtrail": "not delivered"}}
    assert parts[2]["input_audio"]["data"] == AUDIO  # audio has its own flag
    doc = anthropic_messages()
    apply_delivery(doc, configured(image=False))
    blocks = doc["input"]["inputBodyJson"]["messages"][0]["content"]
    assert blocks[0] == {"type": "image", "source": {"llmtrail": "not delivered"}}
    tool = doc["input"]["inputBodyJson"]["messages"][1]["content"][0]
    assert tool["content"] == [{"type": "image", "source": {"llmtrail": "not delivered"}}]


def test_image_generation_output_is_withheld_with_its_count() -> None:
    doc = titan_image()
    assert apply_delivery(doc, configured(image=False)) is True
    assert doc["output"]["outputBodyJson"]["images"] == [{"llmtrail": "not delivered"}] * 2
    assert doc["output"]["outputImageCount"] == 2
    assert doc["input"]["inputBodyJson"]["textToImageParams"]["text"] == TEXT


def test_video_off() -> None:
    doc = converse()
    doc["output"].update(outputVideoS3Path="s3://b/v.mp4", outputVideoDurationSeconds=6.0)
    assert apply_delivery(doc, configured(video=False)) is True
    assert VIDEO not in text_of(doc) and IMAGE in text_of(doc)
    assert "outputVideoS3Path" not in doc["output"]
    assert doc["output"]["outputVideoDurationSeconds"] == 6.0
    assert doc["delivery"]["withheld"] == ["video"] and doc["delivery"]["blocks"] == 2


def test_audio_off() -> None:
    doc = openai_chat()
    assert apply_delivery(doc, configured(audio=False)) is True
    assert AUDIO not in text_of(doc) and IMAGE in text_of(doc)
    audio = doc["output"]["outputBodyJson"]["choices"][0]["message"]["audio"]
    assert audio == {"id": "audio_1", "transcript": ANSWER, "llmtrail": "not delivered"}
    assert doc["delivery"]["withheld"] == ["audio"] and doc["delivery"]["blocks"] == 2


def test_media_off_without_media_changes_nothing() -> None:
    doc = record("Converse", "m", {"messages": [{"content": [{"text": TEXT}]}]}, {"x": 1})
    before = copy.deepcopy(doc)
    assert apply_delivery(doc, configured(image=False, video=False, audio=False)) is False
    assert doc == before


def test_an_offloaded_body_cannot_be_looked_into_so_it_goes() -> None:
    doc = converse()
    del doc["input"]["inputBodyJson"]
    doc["input"]["inputBodyS3Path"] = "s3://llmtrail/AWSLogs/x/data/r_input.json.gz"
    assert apply_delivery(doc, configured(image=False)) is True
    assert "inputBodyS3Path" not in doc["input"]
    assert doc["delivery"]["bodies"] == "withheld"
    assert doc["output"]["outputBodyJson"] == converse()["output"]["outputBodyJson"]


def test_a_body_too_deep_to_look_into_is_withheld_below_the_limit() -> None:
    nested: Any = {"image": {"format": "png", "source": {"bytes": IMAGE}}}
    for _ in range(150):
        nested = {"content": [nested]}
    doc = record("Converse", "m", {"messages": [{"content": [{"text": TEXT}]}], "x": nested}, {})
    assert apply_delivery(doc, configured(image=False)) is True
    assert IMAGE not in text_of(doc) and TEXT in text_of(doc)


# -- embeddings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("make", "count"), [(openai_embeddings, 3), (titan_embeddings, 1)])
def test_embedding_off_withholds_embedding_calls_only(make: Any, count: int) -> None:
    doc, original = make(), make()
    assert apply_delivery(doc, configured(embedding=False)) is True
    assert "inputBodyJson" not in doc["input"] and "outputBodyJson" not in doc["output"]
    assert doc["output"]["outputEmbeddingCount"] == count
    assert doc["delivery"] == {"bodies": "withheld", "reason": "configuration",
                               "withheld": ["embedding"]}  # fmt: skip
    assert without_bodies(doc) == without_bodies(original)
    chat = converse()
    assert apply_delivery(chat, configured(embedding=False)) is False


@pytest.mark.parametrize("make", [openai_embeddings, titan_embeddings])
def test_the_embedding_flag_alone_governs_embedding_calls(make: Any) -> None:
    doc = make()
    assert apply_delivery(doc, configured(text=False, image=False)) is False
    assert doc == make()


# -- any combination ------------------------------------------------------------------------------

FLAGS = ("text", "image", "embedding", "video", "audio")


@given(
    flags=st.fixed_dictionaries({f: st.booleans() for f in FLAGS}),
    which=st.sampled_from(ALL),
    no_log=st.booleans(),
    allow=st.booleans(),
)
def test_any_combination_keeps_what_always_stays_and_drops_what_is_off(
    flags: dict[str, bool], which: Any, no_log: bool, allow: bool
) -> None:
    config = replace(configured(**flags), allow_no_log=allow)
    doc, original = which(), which()
    changed = apply_delivery(doc, config, no_log=no_log)
    assert without_bodies(doc) == without_bodies(original)
    assert changed == ("delivery" in doc and "bodies" in doc["delivery"])
    embedding = which in (openai_embeddings, titan_embeddings)
    if (no_log and allow) or (embedding and not flags["embedding"]):
        assert "inputBodyJson" not in doc["input"]
    if not embedding and not flags["text"]:
        assert TEXT not in text_of(doc)
    if not embedding:
        for kind, canary in (("image", IMAGE), ("video", VIDEO), ("audio", AUDIO)):
            if not flags[kind]:
                assert canary not in text_of(doc)
