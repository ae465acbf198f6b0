// Command helm-validate checks the output of `helm template` offline, without a cluster.
//
// It reads a multi-document YAML stream on stdin and decodes every document strictly into the
// Go type the API server would use for its apiVersion and kind (k8s.io/api, and small typed
// structs below for the CRDs the chart renders): an unknown field, a duplicated field or an
// unknown kind is an error, where `helm lint` and `kubectl --dry-run=client` let them pass. It
// then cross-checks what only holds across objects: the StatefulSet's serviceName names a
// headless Service, probes and Service targetPorts name container ports, selectors (Services,
// PodDisruptionBudget, ServiceMonitor) match the pods they mean and nothing else, referenced
// ConfigMaps exist. It prints one line per document and exits 1 on any problem.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// object is one decoded document.
type object struct {
	source string // the "# Source:" comment helm writes, if any
	gvk    string // apiVersion + " " + kind
	meta   *metav1.ObjectMeta
	value  any
}

// newObject returns an empty typed value for apiVersion/kind, or nil when the kind is unknown.
func newObject(apiVersion, kind string) any {
	switch apiVersion + " " + kind {
	case "v1 ConfigMap":
		return &corev1.ConfigMap{}
	case "v1 Secret":
		return &corev1.Secret{}
	case "v1 Service":
		return &corev1.Service{}
	case "v1 ServiceAccount":
		return &corev1.ServiceAccount{}
	case "apps/v1 StatefulSet":
		return &appsv1.StatefulSet{}
	case "apps/v1 Deployment":
		return &appsv1.Deployment{}
	case "batch/v1 Job":
		return &batchv1.Job{}
	case "policy/v1 PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}
	case "networking.k8s.io/v1 Ingress":
		return &networkingv1.Ingress{}
	case "networking.k8s.io/v1 NetworkPolicy":
		return &networkingv1.NetworkPolicy{}
	case "monitoring.coreos.com/v1 ServiceMonitor":
		return &ServiceMonitor{}
	case "monitoring.coreos.com/v1 PrometheusRule":
		return &PrometheusRule{}
	case "cert-manager.io/v1 Certificate":
		return &Certificate{}
	}
	return nil
}

// metaOf returns the ObjectMeta of any value newObject makes.
func metaOf(v any) *metav1.ObjectMeta {
	type hasMeta interface{ GetObjectMeta() metav1.Object }
	switch o := v.(type) {
	case *ServiceMonitor:
		return &o.ObjectMeta
	case *PrometheusRule:
		return &o.ObjectMeta
	case *Certificate:
		return &o.ObjectMeta
	case hasMeta:
		if m, ok := o.GetObjectMeta().(*metav1.ObjectMeta); ok {
			return m
		}
	}
	return &metav1.ObjectMeta{}
}

var sourceRe = regexp.MustCompile(`(?m)^# Source: (.+)$`)

func main() {
	objs, problems := decodeAll(os.Stdin)
	for _, o := range objs {
		fmt.Printf("ok  %-45s %-40s %s\n", o.gvk, o.meta.Name, o.source)
	}
	problems = append(problems, crossCheck(objs)...)
	for _, p := range problems {
		fmt.Fprintf(os.Stderr, "FAIL %s\n", p)
	}
	if len(problems) > 0 {
		fmt.Fprintf(os.Stderr, "%d problem(s) in %d document(s)\n", len(problems), len(objs))
		os.Exit(1)
	}
	if len(objs) == 0 {
		fmt.Fprintln(os.Stderr, "FAIL no documents on stdin")
		os.Exit(1)
	}
	fmt.Printf("%d document(s), all strict-valid\n", len(objs))
}

// decodeAll reads every document and decodes it strictly.
func decodeAll(r io.Reader) ([]object, []string) {
	var objs []object
	var problems []string
	reader := utilyaml.NewYAMLReader(bufio.NewReader(r))
	for n := 1; ; n++ {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			problems = append(problems, fmt.Sprintf("document %d: %v", n, err))
			break
		}
		source := fmt.Sprintf("document %d", n)
		if m := sourceRe.FindSubmatch(doc); m != nil {
			source = string(m[1])
		}
		o, err := decodeOne(doc, source)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", source, err))
			continue
		}
		if o != nil {
			objs = append(objs, *o)
		}
	}
	return objs, problems
}

func decodeOne(doc []byte, source string) (*object, error) {
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	var generic any
	if err := yaml.Unmarshal(doc, &generic); err != nil {
		return nil, fmt.Errorf("not YAML: %w", err)
	}
	if generic == nil {
		return nil, nil // only comments or whitespace
	}
	if err := yaml.Unmarshal(doc, &head); err != nil {
		return nil, fmt.Errorf("no apiVersion/kind: %w", err)
	}
	v := newObject(head.APIVersion, head.Kind)
	if v == nil {
		return nil, fmt.Errorf("unknown kind %q %q (add it to newObject if it is meant to be rendered)", head.APIVersion, head.Kind)
	}
	if err := unmarshalStrict(doc, v); err != nil {
		return nil, fmt.Errorf("%s %s: %w", head.APIVersion, head.Kind, err)
	}
	meta := metaOf(v)
	if errs := validation.IsDNS1123Subdomain(meta.Name); len(errs) > 0 {
		return nil, fmt.Errorf("%s name %q: %s", head.Kind, meta.Name, strings.Join(errs, "; "))
	}
	if err := checkOne(v); err != nil {
		return nil, fmt.Errorf("%s %s: %w", head.Kind, meta.Name, err)
	}
	return &object{source: source, gvk: head.APIVersion + " " + head.Kind, meta: meta, value: v}, nil
}

// unmarshalStrict decodes like the API server's strict field validation: YAMLToJSONStrict
// refuses duplicate keys, and sigs.k8s.io/json matches field names case-sensitively and reports
// unknown fields. (yaml.UnmarshalStrict alone goes through encoding/json, which matches field
// names ignoring case, so `renewbefore:` would pass for `renewBefore:`.)
func unmarshalStrict(doc []byte, v any) error {
	j, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return err
	}
	strictErrs, err := kjson.UnmarshalStrict(j, v)
	if err != nil {
		return err
	}
	if len(strictErrs) > 0 {
		return errors.Join(strictErrs...)
	}
	return nil
}

// checkOne checks what a single object must satisfy beyond its schema.
func checkOne(v any) error {
	switch o := v.(type) {
	case *ServiceMonitor:
		return o.check()
	case *PrometheusRule:
		return o.check()
	case *Certificate:
		return o.check()
	case *corev1.ConfigMap:
		var b bytes.Buffer
		for k := range o.Data {
			if errs := validation.IsConfigMapKey(k); len(errs) > 0 {
				fmt.Fprintf(&b, "key %q: %s; ", k, strings.Join(errs, ", "))
			}
		}
		if b.Len() > 0 {
			return errors.New(b.String())
		}
	}
	return nil
}
