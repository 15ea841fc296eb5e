"""Manage Amazon Bedrock's model-invocation logging with boto3: read the configuration in
effect, deliver text to a CloudWatch Logs log group of your choosing, check that it took, and
optionally turn logging off.

Written for AWS, exactly as one would write it there. To run it against llmtrail instead,
give the server's address as ``--endpoint-url``; nothing else changes::

    python logging_manager.py --log-group /teams/claims/bedrock \\
        --role-arn arn:aws:iam::123456789012:role/BedrockLogging
    python logging_manager.py --endpoint-url http://127.0.0.1:8080 --log-group ... --role-arn ...
    python logging_manager.py --endpoint-url http://127.0.0.1:8080 --delete

It prints one JSON report: the configuration before, the one applied, whether reading it back
matched, and the configuration after. Exit status 0 when everything matched, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import boto3


def bedrock_client(endpoint_url: str | None, region: str) -> Any:
    """The ``bedrock`` control-plane client; ``endpoint_url`` None means AWS itself."""
    return boto3.client("bedrock", region_name=region, endpoint_url=endpoint_url)


def current_configuration(bedrock: Any) -> dict[str, Any] | None:
    """The logging configuration in effect, or None when logging is not configured."""
    answer = bedrock.get_model_invocation_logging_configuration()
    config: dict[str, Any] | None = answer.get("loggingConfig")
    return config


def text_logging(log_group: str, role_arn: str, deliver_text: bool) -> dict[str, Any]:
    """A configuration that delivers invocation logs to ``log_group`` (text included when
    ``deliver_text``), images and embeddings not."""
    return {
        "cloudWatchConfig": {"logGroupName": log_group, "roleArn": role_arn},
        "textDataDeliveryEnabled": deliver_text,
        "imageDataDeliveryEnabled": False,
        "embeddingDataDeliveryEnabled": False,
    }


def apply(bedrock: Any, config: dict[str, Any]) -> None:
    bedrock.put_model_invocation_logging_configuration(loggingConfig=config)


def matches(applied: dict[str, Any], read_back: dict[str, Any] | None) -> bool:
    """Whether the configuration read back holds everything that was applied (the service
    may add members it defaults, such as flags left out)."""
    if read_back is None:
        return False
    for key, value in applied.items():
        if isinstance(value, dict):
            if not matches(value, read_back.get(key)):
                return False
        elif read_back.get(key) != value:
            return False
    return True


def disable(bedrock: Any) -> None:
    bedrock.delete_model_invocation_logging_configuration()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint-url", help="a Bedrock-compatible endpoint (default: AWS)")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--log-group", help="the CloudWatch Logs log group to deliver to")
    parser.add_argument("--role-arn", help="the IAM role Bedrock assumes to write the logs")
    parser.add_argument(
        "--text", choices=("on", "off"), default="on", help="deliver prompts and completions"
    )
    parser.add_argument("--delete", action="store_true", help="turn invocation logging off")
    args = parser.parse_args(argv)
    if not args.delete and not (args.log_group and args.role_arn):
        parser.error("--log-group and --role-arn are required unless --delete is given")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    bedrock = bedrock_client(args.endpoint_url, args.region)
    report: dict[str, Any] = {"before": current_configuration(bedrock)}
    if args.delete:
        disable(bedrock)
        report["after"] = current_configuration(bedrock)
        report["verified"] = report["after"] is None
    else:
        config = text_logging(args.log_group, args.role_arn, args.text == "on")
        apply(bedrock, config)
        report["applied"] = config
        report["after"] = current_configuration(bedrock)
        report["verified"] = matches(config, report["after"])
    json.dump(report, sys.stdout, indent=2, sort_keys=True)
    print()
    return 0 if report["verified"] else 1


if __name__ == "__main__":
    sys.exit(main())
