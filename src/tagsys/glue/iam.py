"""The least-privilege policy of the Glue job's role (`tagsys deploy --print-iam-policy`):
read its code and the lake, use its temporary folder, read its one secret, log and publish
metrics under Glue's names, and (with a Glue connection) the network interfaces a VPC job needs."""

from __future__ import annotations

from typing import Any

from tagsys.glue.deploy import PREFIX, DeployPlan


def job_policy(plan: DeployPlan, lake_uri: str, connection: str | None) -> dict[str, Any]:
    account = plan.job["Role"].split(":")[4] or "*"
    region = plan.region
    lake_bucket, _, lake_prefix = lake_uri.removeprefix("s3://").partition("/")
    lake_prefix = lake_prefix.rstrip("/")
    base = f"{PREFIX}/{plan.job_name}"
    statements: list[dict[str, Any]] = [
        {
            "Sid": "ReadJobCode",
            "Effect": "Allow",
            "Action": ["s3:GetObject"],
            "Resource": [f"arn:aws:s3:::{plan.bucket}/{base}/*"],
        },
        {
            "Sid": "UseJobTempDir",
            "Effect": "Allow",
            "Action": ["s3:PutObject", "s3:DeleteObject"],
            "Resource": [f"arn:aws:s3:::{plan.bucket}/{base}/tmp/*"],
        },
        {
            "Sid": "ListJobBucketAndLake",
            "Effect": "Allow",
            "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
            "Resource": [f"arn:aws:s3:::{plan.bucket}", f"arn:aws:s3:::{lake_bucket}"],
        },
        {
            "Sid": "ReadLake",
            "Effect": "Allow",
            "Action": ["s3:GetObject"],
            "Resource": [f"arn:aws:s3:::{lake_bucket}/{lake_prefix + '/' if lake_prefix else ''}*"],
        },
        {
            "Sid": "ReadStoreSecret",
            "Effect": "Allow",
            "Action": ["secretsmanager:GetSecretValue"],
            "Resource": [f"arn:aws:secretsmanager:{region}:{account}:secret:{plan.secret_id}*"],
        },
        {
            "Sid": "GlueLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": [f"arn:aws:logs:{region}:{account}:log-group:/aws-glue/*"],
        },
        {
            "Sid": "GlueMetrics",
            "Effect": "Allow",
            "Action": ["cloudwatch:PutMetricData"],
            "Resource": "*",
            "Condition": {"StringEquals": {"cloudwatch:namespace": "Glue"}},
        },
    ]
    if connection:
        statements += [
            {
                "Sid": "ReadDatabaseConnection",
                "Effect": "Allow",
                "Action": ["glue:GetConnection"],
                "Resource": [
                    f"arn:aws:glue:{region}:{account}:catalog",
                    f"arn:aws:glue:{region}:{account}:connection/{connection}",
                ],
            },
            {
                "Sid": "VpcNetworkInterfaces",
                "Effect": "Allow",
                "Action": [
                    "ec2:CreateNetworkInterface",
                    "ec2:DeleteNetworkInterface",
                    "ec2:DescribeNetworkInterfaces",
                    "ec2:DescribeVpcEndpoints",
                    "ec2:DescribeSubnets",
                    "ec2:DescribeSecurityGroups",
                    "ec2:DescribeVpcAttribute",
                    "ec2:DescribeRouteTables",
                    "ec2:CreateTags",
                ],
                "Resource": "*",
            },
        ]
    return {"Version": "2012-10-17", "Statement": statements}
