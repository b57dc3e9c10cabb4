# -*- coding: utf-8 -*-
# Copyright (c) azure_hpc.cache contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Mirrors AUTH_OPTIONS in plugins/module_utils/_transport/credentials.py (tests/unit/plugins/doc_fragments checks it).
    DOCUMENTATION = r"""
options:
  subscription_id:
    description:
      - The Azure subscription, a GUID.
      - Falls back to the E(AZURE_SUBSCRIPTION_ID) environment variable, then to the
        C(subscription_id) of the O(profile) in C(~/.azure/credentials).
    type: str
  auth_source:
    description:
      - Where the credentials come from.
      - V(auto) tries, in order, the module options, the environment, C(~/.azure/credentials),
        workload identity, managed identity and the Azure CLI. Off Azure with no credentials it fails
        within a few seconds and says what it tried.
      - V(env) uses O(client_id), O(secret) and O(tenant), or O(ad_user) and O(password), from the options
        or the environment.
      - V(credential_file) reads the O(profile) section of C(~/.azure/credentials).
      - V(msi) uses managed identity, honouring E(IDENTITY_ENDPOINT) and E(IDENTITY_HEADER) as well as
        the instance metadata service.
      - V(workload_identity) uses the federated token of E(AZURE_FEDERATED_TOKEN_FILE).
      - V(cli) uses the signed-in Azure CLI.
    type: str
    default: auto
    choices: [auto, env, credential_file, cli, msi, workload_identity]
  client_id:
    description:
      - The client (application) ID of a service principal, or of a user-assigned managed identity.
      - Falls back to E(AZURE_CLIENT_ID).
    type: str
  secret:
    description:
      - The service principal's client secret. Never logged.
      - Falls back to E(AZURE_SECRET), then E(AZURE_CLIENT_SECRET).
    type: str
  tenant:
    description:
      - The Entra ID tenant of the service principal or user.
      - Falls back to E(AZURE_TENANT), then E(AZURE_TENANT_ID).
    type: str
  ad_user:
    description:
      - A user name for the legacy user sign-in that AWX injects when no service principal is set.
      - Falls back to E(AZURE_AD_USER).
    type: str
  password:
    description:
      - The password of O(ad_user). Never logged.
      - Falls back to E(AZURE_PASSWORD).
    type: str
  profile:
    description:
      - The section of C(~/.azure/credentials) to read; C(default) when unset.
      - Falls back to E(AZURE_PROFILE).
    type: str
  cloud_environment:
    description:
      - The Azure cloud, by name (V(AzureCloud), V(AzureChinaCloud), V(AzureUSGovernment)) or as the URL of
        an ARM endpoint (Azure Stack Hub, or the collection's local emulator).
      - For a URL, the login endpoint and token audience are discovered from
        C({url}/metadata/endpoints), and Entra ID instance discovery is turned off.
      - Plain C(http://) is only accepted for a loopback host.
      - Falls back to E(AZURE_CLOUD_ENVIRONMENT); V(AzureCloud) when neither is set.
    type: str
notes:
  - Module options take precedence over environment variables. The environment variable names are the
    ones the AWX / Automation Controller C(Microsoft Azure Resource Manager) credential injects, so a job
    template with that credential needs no variables for authentication.
  - A bearer token is only sent to the scheme, host and port of the resolved ARM endpoint. Status URLs
    on any other origin are refused, not followed.
requirements:
  - python >= 3.9
  - azure-identity >= 1.16.0
  - requests >= 2.31.0
"""

    # The same options for plugins (inventory), whose environment fallbacks are declared here.
    PLUGIN = r"""
options:
  subscription_id:
    description: The Azure subscription, a GUID, when O(subscriptions) is not set.
    type: str
    env:
      - name: AZURE_SUBSCRIPTION_ID
  auth_source:
    description:
      - Where the credentials come from; the same choices and order as the modules'.
    type: str
    default: auto
    choices: [auto, env, credential_file, cli, msi, workload_identity]
  client_id:
    description: The client (application) ID of a service principal or user-assigned managed identity.
    type: str
    env:
      - name: AZURE_CLIENT_ID
  secret:
    description: The service principal's client secret. Never logged.
    type: str
    env:
      - name: AZURE_SECRET
      - name: AZURE_CLIENT_SECRET
  tenant:
    description: The Entra ID tenant.
    type: str
    env:
      - name: AZURE_TENANT
      - name: AZURE_TENANT_ID
  ad_user:
    description: A user name for the legacy user sign-in.
    type: str
    env:
      - name: AZURE_AD_USER
  password:
    description: The password of O(ad_user). Never logged.
    type: str
    env:
      - name: AZURE_PASSWORD
  profile:
    description: The section of C(~/.azure/credentials) to read.
    type: str
    env:
      - name: AZURE_PROFILE
  cloud_environment:
    description:
      - The Azure cloud, by name or as the URL of an ARM endpoint; V(AzureCloud) when unset.
    type: str
    env:
      - name: AZURE_CLOUD_ENVIRONMENT
"""
