"""The response field names the contract fixtures (tests/contract/fixtures/*.json) know, per
endpoint, shipped so an installed doctor has them. Written by tests/doctor/test_known_fields.py
"""

from __future__ import annotations


def _fields(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Paths as doctor.fields.field_paths writes them; "x.*" means anything below x is known.
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
        createdAt endTime entrypoint envs envs[].key envs[].value freeStorageSize gpuNum id
        imageAuthId imageUrl jobs jobs[].* keepDataDay kind lastStartedAt lastStoppedAt memory
        name network network.id network.ip node node[].maxRootfsSize portMappings
        portMappings[].endpoint portMappings[].port portMappings[].type productId productName
        rootfsSize spotReclaimTime spotStatus status statusError statusError.message
        statusError.state tools tools[].name tools[].port tools[].type volumeMounts
        volumeMounts[].id volumeMounts[].mountPath volumeMounts[].size volumeMounts[].type
        """
    ),
    "GET /gpu/instances": _fields(
        """
        instances instances[].billingMode instances[].clusterId instances[].clusterName
        instances[].command instances[].cpuNum instances[].endTime instances[].envs
        instances[].envs[].key instances[].envs[].value instances[].gpuNum instances[].id
        instances[].imageAuthId instances[].imageUrl instances[].kind instances[].memory
        instances[].name instances[].portMappings instances[].portMappings[].port
        instances[].portMappings[].type instances[].productId instances[].productName
        instances[].rootfsSize instances[].status instances[].statusError
        instances[].statusError.message instances[].statusError.state instances[].volumeMounts
        instances[].volumeMounts[].id instances[].volumeMounts[].mountPath
        instances[].volumeMounts[].size instances[].volumeMounts[].type total
        """
    ),
    "GET /networkstorages/list": _fields(
        """
        data data[].clusterId data[].clusterName data[].price data[].storageId
        data[].storageName data[].storageSize total
        """
    ),
    "GET /openapi/v1/metrics/gpu/instance": _fields(
        """
        cpuUtilization cpuUtilization[].timestamp cpuUtilization[].value gpuMemUtilization
        gpuMemUtilization.avg gpuMemUtilization.avg[].timestamp gpuMemUtilization.avg[].value
        gpuMemUtilization.gpuIds gpuMemUtilization.gpuIds[].gpuId
        gpuMemUtilization.gpuIds[].items gpuMemUtilization.gpuIds[].items[].timestamp
        gpuMemUtilization.gpuIds[].items[].value gpuUtilization gpuUtilization.avg
        gpuUtilization.avg[].timestamp gpuUtilization.avg[].value gpuUtilization.gpuIds
        gpuUtilization.gpuIds[].gpuId gpuUtilization.gpuIds[].items
        gpuUtilization.gpuIds[].items[].timestamp gpuUtilization.gpuIds[].items[].value
        memUtilization memUtilization[].timestamp memUtilization[].value rootDiskUtilization
        rootDiskUtilization[].timestamp rootDiskUtilization[].value
        """
    ),
    "GET /products": _fields(
        """
        data data[].availableDeploy data[].billingMethods data[].canBuy data[].cpuPerGpu
        data[].diskPerGpu data[].id data[].inventoryState data[].maxLocalStorage
        data[].maxRootFS data[].memoryPerGpu data[].minLocalStorage data[].minRootFS
        data[].monthlyPrice data[].monthlyPrice[].* data[].monthlyPrice[].month
        data[].monthlyPrice[].price data[].name data[].price data[].regions data[].spotPrice
        """
    ),
    "GET /repository/auths": _fields(
        """
        data data[].id data[].name data[].password data[].username
        """
    ),
    "GET /template": _fields(
        """
        template template.Id template.channel template.createdAt template.entrypoint
        template.envs template.envs[].key template.envs[].value template.image
        template.imageAuth template.logo template.minCudaVersion template.name template.ports
        template.ports[].ports template.ports[].type template.readme template.recommendCards
        template.recommendCards[].cardNum template.recommendCards[].gpuSpecId
        template.rootfsSize template.startCommand template.tools template.tools[].describe
        template.tools[].name template.tools[].port template.tools[].type template.type
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
        template[].tools[].port template[].tools[].type template[].type total
        """
    ),
}
