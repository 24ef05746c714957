"""Reference solutions for the chat-templates exercises.

Try the exercises in `notebooks/chat_templates_example.ipynb` first. In the notebook the
tokenizer is a global; here it is a parameter, so use these with
`dataset.map(smoltalk_row_to_chatml, fn_kwargs={"tokenizer": instruct_tokenizer})`.
The test suite runs every solution through the notebook's checkers.
"""


# 🐢 smoltalk → ChatML: the row already holds a conversation; the template renders it.
def smoltalk_row_to_chatml(row, tokenizer):
    return {"text": tokenizer.apply_chat_template(row["messages"], tokenize=False)}


# 🐕 step 1, gsm8k → messages: the question is the user's turn, the whole worked answer
# (with its final "#### <number>" line) is the assistant's.
def gsm8k_row_to_messages(row):
    return {
        "messages": [
            {"role": "user", "content": row["question"]},
            {"role": "assistant", "content": row["answer"]},
        ]
    }


# 🐕 step 2, gsm8k → ChatML: training text, so no generation prompt.
def gsm8k_row_to_chatml(row, tokenizer):
    messages = gsm8k_row_to_messages(row)["messages"]
    return {"text": tokenizer.apply_chat_template(messages, tokenize=False)}
