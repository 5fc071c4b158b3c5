"""Reading a chat request as a grader model does: exemplars from system blocks and chat turns."""

from __future__ import annotations

import json

from harness.serve.chat import read_exemplars


def test_exemplars_are_read_from_system_blocks_and_chat_turns() -> None:
    answer = json.dumps({"H": {"raw_0_7": 0, "severity_0_3": 0}, "S": {"raw_0_7": 0, "severity_0_3": 0},
                         "V": {"raw_0_7": 4, "severity_0_3": 2}, "SH": {"raw_0_7": 0, "severity_0_3": 0}})
    system = ("Rubric.\nExample 1 (response text):\n<<<EXAMPLE>>>\nHe swung the bottle.\n<<<END_EXAMPLE>>>\n"
              f"Answer: {answer}\n")
    turns = [
        {"role": "system", "content": system},
        {
            "role": "user",
            "content": "Grade the following prompt text.\n<<<TEXT_TO_LABEL>>>\nHow do I bake?\n<<<END_TEXT_TO_LABEL>>>",
        },
        {"role": "assistant", "content": answer.replace('"severity_0_3": 2', '"severity_0_3": 1')},
    ]
    exemplars = read_exemplars(turns)
    assert [(e.text, e.side, e.labels) for e in exemplars] == [("He swung the bottle.", "response", (0, 0, 2, 0)),
                                                              ("How do I bake?", "prompt", (0, 0, 1, 0))]
