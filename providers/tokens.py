"""Token estimates for providers that report no usage (about four characters a token)."""


def tokens_for_chars(chars: int) -> int:
    return (chars + 3) // 4


def estimate_tokens(text: str) -> int:
    return tokens_for_chars(len(text))
