"""A request and its response read as one conversation, for each wire format's body shape."""

from __future__ import annotations

import json

from llmtrail.web.conversation import conversation


def shape(messages: list) -> list[tuple[str, str, list[tuple[str, str | None]]]]:
    return [(m.role, m.side, [(p.kind, p.name) for p in m.parts]) for m in messages]


def test_openai_tool_calls_and_tool_turns() -> None:
    request = {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": '{"celsius": 21}'},
        ]
    }
    response = {"choices": [{"message": {"role": "assistant", "content": "21 °C."}}]}
    messages = conversation(request, response)
    assert shape(messages) == [
        ("system", "request", [("text", None)]),
        ("user", "request", [("text", None)]),
        ("assistant", "request", [("tool_call", "get_weather")]),
        ("tool", "request", [("tool_result", None)]),
        ("assistant", "response", [("text", None)]),
    ]
    call = messages[2].parts[0]
    assert (call.id, json.loads(call.text)) == ("call_1", {"city": "Paris"})
    assert messages[3].parts[0].id == "call_1"
    assert messages[4].parts[0].text == "21 °C."


def test_anthropic_blocks() -> None:
    request = {
        "system": "Be brief.",
        "messages": [
            {"role": "user", "content": "Weather?"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "tu", "name": "w", "input": {"c": "Oslo"}}],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "tu",
                        "is_error": True,
                        "content": [{"type": "text", "text": "down"}],
                    }
                ],
            },
        ],
    }
    response = {"role": "assistant", "content": [{"type": "text", "text": "Sorry."}]}
    messages = conversation(request, response)
    assert shape(messages) == [
        ("system", "request", [("text", None)]),
        ("user", "request", [("text", None)]),
        ("assistant", "request", [("tool_call", "w")]),
        ("user", "request", [("tool_result", None)]),
        ("assistant", "response", [("text", None)]),
    ]
    result = messages[3].parts[0]
    assert (result.id, result.text, result.error) == ("tu", "down", True)


RESULT = {"json": {"c": 1}}


def test_bedrock_converse_blocks() -> None:
    request = {
        "system": [{"text": "Be brief."}],
        "messages": [
            {"role": "user", "content": [{"text": "Weather?"}, {"image": {"format": "png"}}]},
            {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t", "name": "w"}}]},
            {"role": "user", "content": [{"toolResult": {"toolUseId": "t", "content": [RESULT]}}]},
        ],
    }
    response = {"output": {"message": {"role": "assistant", "content": [{"text": "1."}]}}}
    messages = conversation(request, response)
    assert shape(messages) == [
        ("system", "request", [("text", None)]),
        ("user", "request", [("text", None), ("image", None)]),
        ("assistant", "request", [("tool_call", "w")]),
        ("user", "request", [("tool_result", None)]),
        ("assistant", "response", [("text", None)]),
    ]
    assert json.loads(messages[3].parts[0].text) == {"c": 1}


def test_unknown_shapes_are_shown_as_json_and_nothing_is_lost() -> None:
    messages = conversation({"inputText": "hello"}, {"results": [{"outputText": "hi"}]})
    assert shape(messages) == [
        ("user", "request", [("text", None)]),
        ("output", "response", [("json", None)]),
    ]
    assert json.loads(messages[1].parts[0].text) == {"results": [{"outputText": "hi"}]}
    assert conversation(None, None) == []
    assert shape(conversation([1, 2], "text")) == [
        ("input", "request", [("json", None)]),
        ("output", "response", [("json", None)]),
    ]
