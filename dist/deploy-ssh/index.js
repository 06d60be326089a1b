import { createRequire as __shiplineCreateRequire } from 'node:module';
import { fileURLToPath as __shiplineFileURLToPath } from 'node:url';
import { dirname as __shiplineDirname } from 'node:path';
const require = __shiplineCreateRequire(import.meta.url);
const __filename = __shiplineFileURLToPath(import.meta.url);
const __dirname = __shiplineDirname(__filename);
import{deployStep,maintenanceStep,readDeployInputs,readMaintenanceMode}from"../chunks/chunk-AYZP33A4.js";import"../chunks/chunk-NUQGGYIP.js";import"../chunks/chunk-5N3IRHJM.js";import"../chunks/chunk-ZXOT7UHV.js";import"../chunks/chunk-BFZJOJX2.js";import"../chunks/chunk-76JVSEZT.js";import"../chunks/chunk-VPIAH72H.js";import"../chunks/chunk-EAPOIXHI.js";import{UserError,info,runAction}from"../chunks/chunk-4G2JM4RB.js";import"../chunks/chunk-K363CBXC.js";function getInputs(){return readDeployInputs()}async function run(){let mode=readMaintenanceMode();if(mode==="on"||mode==="off")return maintenanceStep(mode);let{result,version,record}=await deployStep(getInputs());if(await record?.finish(result.status==="deployed"?"success":"failure",result.status==="deployed"?`${version} is live`:result.error??result.status),result.status!=="deployed")throw new UserError(result.error??`deploy ${result.status}`);info(`deployed ${version} (${result.releaseId}) to ${result.hosts.length} host(s)`)}await runAction(run);
