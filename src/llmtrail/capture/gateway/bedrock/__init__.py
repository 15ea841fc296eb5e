"""The Bedrock runtime's wire format: its routes (`api`), the Converse payloads (`converse`),
the model-native InvokeModel payloads (`native`, read per model family by `models`) and AWS
event-stream framing (`eventstream`)."""
