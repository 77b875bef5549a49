"""A TorchServe handler without weights, for the storage example: each instance
is a list of numbers and the answer is their sum.

It is a module-level `handle(data, context)`, which TorchServe accepts as a
custom handler. Under KServe the runtime sets TS_SERVICE_ENVELOPE (honoured
because config.properties has enable_envvars_config=true), so `data` is the
list of `instances` of a V1 request and the answer becomes `{"predictions": [...]}`.
"""


def _number_list(row):
    if isinstance(row, dict):
        row = row.get("data")
    if isinstance(row, (int, float)) and not isinstance(row, bool):
        return [row]
    if isinstance(row, list) and all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                     for x in row):
        return row
    return None


def handle(data, context):
    if data is None:  # TorchServe calls the entry point once, empty, when it loads the model
        return None
    answers = []
    for row in data:
        numbers = _number_list(row)
        answers.append(sum(numbers) if numbers is not None
                       else {"error": "expected a list of numbers, e.g. [1, 2, 3]"})
    return answers
