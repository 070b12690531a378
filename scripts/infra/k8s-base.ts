/**
 * The one base of every process's Kubernetes objects: Deployment, Service (not for workers), HPA or
 * KEDA ScaledObject, PodDisruptionBudget. A process's settings (scripts/infra/deployments.ts) are
 * the only thing that differs; the probes, security context, preStop pause and spread are shared.
 */
import type { IDeployment } from "kubernetes-models/apps/v1";
import type { IHorizontalPodAutoscaler } from "kubernetes-models/autoscaling/v2";
import type { IEnvVar, IService } from "kubernetes-models/v1";
import type { IPodDisruptionBudget } from "kubernetes-models/policy/v1";
import type { IScaledObject } from "@kubernetes-models/keda/keda.sh/v1alpha1";
import type { Deployment, EnvEntry } from "./deployments";

export const NAMESPACE = "haiyvee";
export const IMAGE_REPOSITORY = "ghcr.io/haiyvee";
export const IMAGE_TAG = "0.1.0";
/** Where KEDA reads the BullMQ wait lists (the same Redis as REDIS_URL in config.yaml). */
const KEDA_REDIS = "redis.haiyvee.svc:6379";

export type K8sObject =
  IDeployment | IService | IHorizontalPodAutoscaler | IScaledObject | IPodDisruptionBudget;

/** One process's objects and the comment lines above them. */
export interface ProcessManifest {
  comment: string[];
  objects: K8sObject[];
}

function envVar(entry: EnvEntry): IEnvVar {
  if ("value" in entry) return { name: entry.name, value: entry.value };
  return {
    name: entry.name,
    valueFrom: {
      secretKeyRef: {
        name: entry.secret,
        key: entry.key ?? entry.name,
        ...(entry.optional ? { optional: true } : {}),
      },
    },
  };
}

export function processManifest(d: Deployment): ProcessManifest {
  const name = d.process.name;
  const labels = {
    "app.kubernetes.io/name": name,
    "app.kubernetes.io/part-of": NAMESPACE,
    "app.kubernetes.io/component": d.component,
  };
  const metadata = { name, namespace: NAMESPACE, labels };
  const selector = { matchLabels: { "app.kubernetes.io/name": name } };
  const probe = (path: string) => ({ httpGet: { path, port: "http" } });

  const deployment: IDeployment = {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata,
    spec: {
      replicas: d.replicas,
      revisionHistoryLimit: 5,
      selector,
      strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: "25%" } },
      template: {
        metadata: {
          annotations: {
            "prometheus.io/scrape": "true",
            "prometheus.io/port": String(d.metricsPort),
            "prometheus.io/path": "/metrics",
          },
          labels,
        },
        spec: {
          terminationGracePeriodSeconds: d.terminationGraceSeconds,
          automountServiceAccountToken: false,
          securityContext: { fsGroup: 1000, seccompProfile: { type: "RuntimeDefault" } },
          topologySpreadConstraints: [
            {
              maxSkew: 1,
              topologyKey: "kubernetes.io/hostname",
              whenUnsatisfiable: "ScheduleAnyway",
              labelSelector: selector,
            },
          ],
          containers: [
            {
              name,
              image: `${IMAGE_REPOSITORY}/${name}:${IMAGE_TAG}`,
              imagePullPolicy: "IfNotPresent",
              ports: [
                { name: "http", containerPort: d.port },
                ...d.extraPorts.map((p) => ({ name: p.name, containerPort: p.port })),
              ],
              envFrom: [{ configMapRef: { name: "hv-config" } }],
              env: [{ name: d.process.portVariable, value: String(d.port) }, ...d.env.map(envVar)],
              readinessProbe: {
                ...probe("/readyz"),
                periodSeconds: 5,
                timeoutSeconds: 3,
                failureThreshold: 2,
              },
              livenessProbe: {
                ...probe("/healthz"),
                periodSeconds: 10,
                timeoutSeconds: 3,
                failureThreshold: 6,
              },
              startupProbe: { ...probe("/healthz"), periodSeconds: 2, failureThreshold: 60 },
              lifecycle: { preStop: { exec: { command: ["sleep", "10"] } } },
              resources: d.resources,
              securityContext: {
                runAsNonRoot: true,
                runAsUser: 1000,
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                capabilities: { drop: ["ALL"] },
              },
              volumeMounts: [{ name: "tmp", mountPath: "/tmp" }],
            },
          ],
          volumes: [{ name: "tmp", emptyDir: { sizeLimit: d.tmpSize } }],
        },
      },
    },
  };

  const service: IService = {
    apiVersion: "v1",
    kind: "Service",
    metadata,
    spec: {
      selector: { "app.kubernetes.io/name": name },
      ports: [{ name: "http", port: d.port, targetPort: "http" }],
    },
  };

  const scaler: IHorizontalPodAutoscaler | IScaledObject =
    d.scaling.kind === "hpa"
      ? {
          apiVersion: "autoscaling/v2",
          kind: "HorizontalPodAutoscaler",
          metadata,
          spec: {
            scaleTargetRef: { apiVersion: "apps/v1", kind: "Deployment", name },
            minReplicas: d.scaling.min,
            maxReplicas: d.scaling.max,
            metrics: [
              {
                type: "Resource",
                resource: { name: "cpu", target: { type: "Utilization", averageUtilization: 60 } },
              },
            ],
            behavior: {
              scaleDown: {
                stabilizationWindowSeconds: 300,
                policies: [{ type: "Percent", value: 20, periodSeconds: 60 }],
              },
            },
          },
        }
      : {
          apiVersion: "keda.sh/v1alpha1",
          kind: "ScaledObject",
          metadata,
          spec: {
            scaleTargetRef: { name },
            minReplicaCount: d.scaling.min,
            maxReplicaCount: d.scaling.max,
            pollingInterval: 15,
            cooldownPeriod: 300,
            triggers: [
              ...d.scaling.lists.map((wait) => ({
                type: "redis",
                metadata: { address: KEDA_REDIS, listName: wait.list, listLength: String(wait.length) },
              })),
              { type: "cpu", metricType: "Utilization", metadata: { value: "70" } },
            ],
          },
        };

  const pdb: IPodDisruptionBudget = {
    apiVersion: "policy/v1",
    kind: "PodDisruptionBudget",
    metadata,
    spec: { maxUnavailable: 1, selector },
  };

  const scaledBy =
    d.scaling.kind === "hpa" ? "HPA (CPU)" : "KEDA ScaledObject (BullMQ wait-list length, then CPU)";
  const kinds =
    d.component === "worker"
      ? `Deployment, ${scaledBy}, PodDisruptionBudget.`
      : `Deployment, Service, ${scaledBy}, PodDisruptionBudget.`;
  return {
    comment: [
      `${name}: ${kinds}`,
      "Probes: readiness /readyz (database, Redis), liveness /healthz. On SIGTERM the pod is removed from the",
      "Service's endpoints while preStop sleeps 10 s, then the process drains (kit/src/shutdown.ts: at most 15 s).",
      ...d.notes,
    ],
    objects: d.component === "worker" ? [deployment, scaler, pdb] : [deployment, service, scaler, pdb],
  };
}
