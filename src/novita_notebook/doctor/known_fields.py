"""The response field names the contract fixtures (tests/contract/fixtures/*.json) know, per
endpoint: a copy shipped in the package so the doctor works installed; a test keeps it equal.
"""

from __future__ import annotations


def _fields(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Paths as doctor.fields.field_paths writes them: object keys joined by ".", list items "[]".
KNOWN_FIELDS: dict[str, frozenset[str]] = {
    "GET /clusters": _fields(
        """
        data data[].availableGpuType data[].id data[].name data[].supportInstanceNetwork
        data[].supportNetworkStorage
        """
    ),
    "GET /gpu/instance": _fields(
        """
        billingMode clusterId clusterName command connectComponentJupyter
        connectComponentJupyter.address connectComponentJupyter.isRunning
        connectComponentJupyter.port connectComponentLog connectComponentLog.instanceLogAddress
        connectComponentLog.isRunning connectComponentLog.systemLogAddress connectComponentSSH
        connectComponentSSH.isRunning connectComponentSSH.password
        connectComponentSSH.sshCommand connectComponentWebTerminal
        connectComponentWebTerminal.address connectComponentWebTerminal.isRunning
        connectComponentWebTerminal.password connectComponentWebTerminal.username cpuNum
        createdAt endTime entrypoint envs freeStorageSize gpuNum id imageAuthId imageUrl jobs
        keepDataDay kind lastStartedAt lastStoppedAt memory minCudaVersion name network
        network.id network.ip node node[].maxRootfsSize portMappings portMappings[].endpoint
        portMappings[].port portMappings[].type productId productName rootfsSize spotReclaimTime
        spotStatus status statusError statusError.message statusError.state tools volumeMounts
        """
    ),
    "GET /gpu/instances": _fields(
        """
        instances instances[].billingMode instances[].clusterId instances[].clusterName
        instances[].command instances[].cpuNum instances[].endTime instances[].envs
        instances[].gpuNum instances[].id instances[].imageAuthId instances[].imageUrl
        instances[].kind instances[].memory instances[].name instances[].portMappings
        instances[].portMappings[].port instances[].portMappings[].type instances[].productId
        instances[].productName instances[].rootfsSize instances[].status
        instances[].statusError instances[].statusError.message instances[].statusError.state
        instances[].volumeMounts total
        """
    ),
    "GET /networkstorages/list": _fields(
        """
        data data[].clusterId data[].clusterName data[].price data[].storageId
        data[].storageName data[].storageSize total
        """
    ),
    "GET /products": _fields(
        """
        data data[].availableDeploy data[].billingMethods data[].canBuy data[].cpuPerGpu
        data[].diskPerGpu data[].id data[].inventoryState data[].maxLocalStorage
        data[].maxRootFS data[].memoryPerGpu data[].minLocalStorage data[].minRootFS
        data[].monthlyPrice data[].monthlyPrice[].month data[].monthlyPrice[].price data[].name
        data[].price data[].regions data[].spotPrice
        """
    ),
    "GET /repository/auths": _fields(
        """
        data data[].id data[].name data[].password data[].username
        """
    ),
    "GET /templates": _fields(
        """
        pageNum pageSize template template[].Id template[].channel template[].createdAt
        template[].entrypoint template[].envs template[].envs[].key template[].envs[].value
        template[].image template[].imageAuth template[].logo template[].minCudaVersion
        template[].name template[].ports template[].ports[].ports template[].ports[].type
        template[].readme template[].recommendCards template[].recommendCards[].cardNum
        template[].recommendCards[].gpuSpecId template[].rootfsSize template[].startCommand
        template[].tools template[].tools[].describe template[].tools[].name
        template[].tools[].port template[].tools[].type template[].type template[].user total
        """
    ),
}
