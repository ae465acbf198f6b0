package main

// Checks that span objects: names that must refer to each other, selectors that must match.

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// workload is a pod template and where it comes from.
type workload struct {
	name     string
	template *corev1.PodTemplateSpec
	isSet    bool            // a StatefulSet's pods (the cairn nodes), not a Job's
	claims   map[string]bool // volumeClaimTemplates, mountable like volumes
}

type index struct {
	services   map[string]*corev1.Service
	configMaps map[string]*corev1.ConfigMap
	sets       []*appsv1.StatefulSet
	pods       []workload // every pod template: StatefulSets and Jobs
}

func crossCheck(objs []object) []string {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	ix := index{services: map[string]*corev1.Service{}, configMaps: map[string]*corev1.ConfigMap{}}
	seen := map[string]bool{}
	for _, o := range objs {
		key := o.gvk + " " + o.meta.Namespace + "/" + o.meta.Name
		if seen[key] {
			bad("%s is rendered twice", key)
		}
		seen[key] = true
		switch v := o.value.(type) {
		case *corev1.Service:
			ix.services[v.Name] = v
		case *corev1.ConfigMap:
			ix.configMaps[v.Name] = v
		case *appsv1.StatefulSet:
			ix.sets = append(ix.sets, v)
			claims := map[string]bool{}
			for _, c := range v.Spec.VolumeClaimTemplates {
				claims[c.Name] = true
			}
			ix.pods = append(ix.pods, workload{"StatefulSet " + v.Name, &v.Spec.Template, true, claims})
		case *batchv1.Job:
			ix.pods = append(ix.pods, workload{"Job " + v.Name, &v.Spec.Template, false, nil})
		}
	}
	for _, s := range ix.sets {
		checkStatefulSet(s, &ix, bad)
	}
	for _, w := range ix.pods {
		checkPodTemplate(w, &ix, bad)
	}
	for _, o := range objs {
		switch v := o.value.(type) {
		case *corev1.Service:
			checkService(v, &ix, bad)
		case *policyv1.PodDisruptionBudget:
			checkSelects("PodDisruptionBudget "+v.Name, v.Spec.Selector, &ix, bad)
		case *networkingv1.NetworkPolicy:
			checkSelects("NetworkPolicy "+v.Name, &v.Spec.PodSelector, &ix, bad)
		case *networkingv1.Ingress:
			checkIngress(v, &ix, bad)
		case *ServiceMonitor:
			checkServiceMonitor(v, &ix, bad)
		}
	}
	return problems
}

func checkStatefulSet(s *appsv1.StatefulSet, ix *index, bad func(string, ...any)) {
	what := "StatefulSet " + s.Name
	sel, err := metav1.LabelSelectorAsSelector(s.Spec.Selector)
	if err != nil || sel.Empty() || !sel.Matches(labels.Set(s.Spec.Template.Labels)) {
		bad("%s: spec.selector does not select its own pod template's labels", what)
	}
	svc, ok := ix.services[s.Spec.ServiceName]
	switch {
	case !ok:
		bad("%s: serviceName %q names no Service in the chart", what, s.Spec.ServiceName)
	case svc.Spec.ClusterIP != corev1.ClusterIPNone:
		bad("%s: serviceName %q is not a headless Service (clusterIP: None)", what, svc.Name)
	case !svc.Spec.PublishNotReadyAddresses:
		bad("%s: headless Service %q must publish not-ready addresses, or peers cannot find each other while they start", what, svc.Name)
	case !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(s.Spec.Template.Labels)):
		bad("%s: headless Service %q does not select its pods", what, svc.Name)
	}
	if s.Spec.PodManagementPolicy != appsv1.ParallelPodManagement {
		bad("%s: podManagementPolicy must be Parallel (all peers must be up for bootstrap)", what)
	}
	if s.Spec.UpdateStrategy.Type != appsv1.RollingUpdateStatefulSetStrategyType {
		bad("%s: updateStrategy must be RollingUpdate (one pod at a time keeps a quorum)", what)
	}
}

func hasVolume(spec *corev1.PodSpec, name string) bool {
	for _, v := range spec.Volumes {
		if v.Name == name {
			return true
		}
	}
	return false
}

// checkPodTemplate: probes name container ports, mounts name volumes, ConfigMaps exist.
func checkPodTemplate(w workload, ix *index, bad func(string, ...any)) {
	spec := &w.template.Spec
	for _, c := range append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...) {
		for name, p := range map[string]*corev1.Probe{"startupProbe": c.StartupProbe, "livenessProbe": c.LivenessProbe, "readinessProbe": c.ReadinessProbe} {
			if p == nil {
				continue
			}
			var port *intstr.IntOrString
			switch {
			case p.HTTPGet != nil:
				port = &p.HTTPGet.Port
			case p.TCPSocket != nil:
				port = &p.TCPSocket.Port
			case p.GRPC != nil:
				port = &intstr.IntOrString{IntVal: p.GRPC.Port}
			}
			if port != nil && !containerHasPort(c, *port) {
				bad("%s: container %s: %s port %s is not one of the container's ports", w.name, c.Name, name, port.String())
			}
		}
		for _, m := range c.VolumeMounts {
			if !w.claims[m.Name] && !hasVolume(spec, m.Name) {
				bad("%s: container %s mounts %q, which is neither a volume nor a volumeClaimTemplate", w.name, c.Name, m.Name)
			}
		}
	}
	for _, v := range spec.Volumes {
		if v.ConfigMap != nil && (v.ConfigMap.Optional == nil || !*v.ConfigMap.Optional) {
			if _, ok := ix.configMaps[v.ConfigMap.Name]; !ok {
				bad("%s: volume %s: ConfigMap %q is not rendered by the chart", w.name, v.Name, v.ConfigMap.Name)
			}
		}
	}
}

func containerHasPort(c corev1.Container, port intstr.IntOrString) bool {
	for _, p := range c.Ports {
		if (port.Type == intstr.String && p.Name == port.StrVal) || (port.Type == intstr.Int && p.ContainerPort == port.IntVal) {
			return true
		}
	}
	return false
}

// checkService: the selector matches StatefulSet pods only, and named targetPorts exist.
func checkService(svc *corev1.Service, ix *index, bad func(string, ...any)) {
	what := "Service " + svc.Name
	if len(svc.Spec.Selector) == 0 {
		bad("%s: no selector", what)
		return
	}
	sel := labels.SelectorFromSet(svc.Spec.Selector)
	matched := false
	for _, w := range ix.pods {
		if !sel.Matches(labels.Set(w.template.Labels)) {
			continue
		}
		if !w.isSet {
			bad("%s: selects the pods of %s too", what, w.name)
			continue
		}
		matched = true
		for _, p := range svc.Spec.Ports {
			if p.TargetPort.Type == intstr.String && !anyContainerHasPort(w.template, p.TargetPort) {
				bad("%s: port %s targets %q, which no container of %s declares", what, p.Name, p.TargetPort.StrVal, w.name)
			}
		}
	}
	if !matched {
		bad("%s: selects no pods of the chart", what)
	}
}

func anyContainerHasPort(t *corev1.PodTemplateSpec, port intstr.IntOrString) bool {
	for _, c := range t.Spec.Containers {
		if containerHasPort(c, port) {
			return true
		}
	}
	return false
}

// checkSelects: a selector meant for the cairn pods matches exactly the StatefulSets' pods.
func checkSelects(what string, ls *metav1.LabelSelector, ix *index, bad func(string, ...any)) {
	sel, err := metav1.LabelSelectorAsSelector(ls)
	if err != nil {
		bad("%s: bad selector: %v", what, err)
		return
	}
	if sel.Empty() {
		bad("%s: empty selector (selects every pod in the namespace)", what)
		return
	}
	matched := false
	for _, w := range ix.pods {
		if sel.Matches(labels.Set(w.template.Labels)) {
			if !w.isSet {
				bad("%s: selects the pods of %s too", what, w.name)
			} else {
				matched = true
			}
		}
	}
	if !matched {
		bad("%s: selects none of the StatefulSet's pods", what)
	}
}

func checkIngress(ing *networkingv1.Ingress, ix *index, bad func(string, ...any)) {
	for _, r := range ing.Spec.Rules {
		if r.HTTP == nil {
			continue
		}
		for _, p := range r.HTTP.Paths {
			b := p.Backend.Service
			if b == nil {
				bad("Ingress %s: path %s has no service backend", ing.Name, p.Path)
				continue
			}
			svc, ok := ix.services[b.Name]
			if !ok {
				bad("Ingress %s: backend Service %q is not rendered by the chart", ing.Name, b.Name)
				continue
			}
			if !serviceHasPort(svc, b.Port.Name, b.Port.Number) {
				bad("Ingress %s: Service %s has no port %q/%d", ing.Name, b.Name, b.Port.Name, b.Port.Number)
			}
		}
	}
}

func serviceHasPort(svc *corev1.Service, name string, number int32) bool {
	for _, p := range svc.Spec.Ports {
		if (name != "" && p.Name == name) || (name == "" && p.Port == number) {
			return true
		}
	}
	return false
}

// checkServiceMonitor: the selector matches exactly one Service, which has the scraped port.
func checkServiceMonitor(m *ServiceMonitor, ix *index, bad func(string, ...any)) {
	sel, err := metav1.LabelSelectorAsSelector(&m.Spec.Selector)
	if err != nil || sel.Empty() {
		bad("ServiceMonitor %s: bad or empty selector", m.Name)
		return
	}
	var hits []*corev1.Service
	for _, svc := range ix.services {
		if sel.Matches(labels.Set(svc.Labels)) {
			hits = append(hits, svc)
		}
	}
	if len(hits) != 1 {
		bad("ServiceMonitor %s: selects %d Services, want exactly 1 (every pod scraped once)", m.Name, len(hits))
		return
	}
	for _, e := range m.Spec.Endpoints {
		if !serviceHasPort(hits[0], e.Port, 0) {
			bad("ServiceMonitor %s: Service %s has no port named %q", m.Name, hits[0].Name, e.Port)
		}
	}
}
