package resources

import (
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/internal/crm"
)

// privateRanges are never reachable as "the internet" from an application:
// other projects' pods and the cluster's own networks live there.
var privateRanges = []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16"}

// appTier selects the application pods of an environment: the web
// application and its components, not the database or Redis.
func appTier(in *EnvironmentInput) *metav1.LabelSelector {
	components := []string{ComponentApp, ComponentMigration, ComponentInit}
	for _, c := range in.Profile.Components {
		components = append(components, c.Name)
	}
	return &metav1.LabelSelector{
		MatchLabels:      map[string]string{crmv1alpha1.LabelEnvironment: in.Env.Name},
		MatchExpressions: []metav1.LabelSelectorRequirement{{Key: LabelComponent, Operator: metav1.LabelSelectorOpIn, Values: components}},
	}
}

func tcp(port int32) networkingv1.NetworkPolicyPort {
	return networkingv1.NetworkPolicyPort{Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To(intstr.FromInt32(port))}
}

func policy(in *EnvironmentInput, name, component string, pods metav1.LabelSelector) *networkingv1.NetworkPolicy {
	return &networkingv1.NetworkPolicy{
		TypeMeta:   typeMeta("networking.k8s.io/v1", "NetworkPolicy"),
		ObjectMeta: meta(name, in.Env.Namespace, componentLabels(in, component)),
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: pods,
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
		},
	}
}

// appPolicy: the ingress controller and the environment's own application
// pods may reach the application; it may reach its own database and Redis,
// DNS, its own pods, and addresses outside private ranges (mail, APIs),
// never another environment or project.
func appPolicy(in *EnvironmentInput) *networkingv1.NetworkPolicy {
	tier := appTier(in)
	np := policy(in, AppName(in.Env.Name), ComponentApp, *tier)
	ports := []networkingv1.NetworkPolicyPort{tcp(in.Profile.Port)}
	for _, c := range in.Profile.Components {
		for _, port := range c.Ports {
			ports = append(ports, tcp(port))
		}
	}
	np.Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{
		{
			From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{
				MatchLabels: map[string]string{corev1.LabelMetadataName: in.IngressNamespace},
			}}},
			Ports: ports,
		},
		// Components talk to each other (EspoCRM's websocket over ZeroMQ).
		{From: []networkingv1.NetworkPolicyPeer{{PodSelector: tier}}},
	}
	egress := []networkingv1.NetworkPolicyEgressRule{
		{To: []networkingv1.NetworkPolicyPeer{{PodSelector: tier}}},
		dns(),
		internet(in),
	}
	if in.External == nil {
		egress = append(egress, networkingv1.NetworkPolicyEgressRule{
			To:    []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: selector(in.Env.Name, ComponentDatabase)}}},
			Ports: []networkingv1.NetworkPolicyPort{tcp(crm.DatabaseFor(in.Profile.Engine).Port)},
		})
	} else {
		// The external database's address is not known to the policy: allow its port.
		egress = append(egress, networkingv1.NetworkPolicyEgressRule{Ports: []networkingv1.NetworkPolicyPort{tcp(in.External.Port)}})
	}
	if in.Profile.NeedsRedis {
		egress = append(egress, networkingv1.NetworkPolicyEgressRule{
			To:    []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: selector(in.Env.Name, ComponentRedis)}}},
			Ports: []networkingv1.NetworkPolicyPort{tcp(crm.Redis.Port)},
		})
	}
	if CatchesMail(in) {
		egress = append(egress, networkingv1.NetworkPolicyEgressRule{
			To:    []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: selector(in.Env.Name, ComponentMail)}}},
			Ports: []networkingv1.NetworkPolicyPort{tcp(MailSMTPPort)},
		})
	}
	np.Spec.Egress = egress
	return np
}

// dns lets pods resolve names: port 53 of any address, because the
// cluster's DNS is not always a pod a namespace selector matches (NodeLocal
// DNSCache answers on a link-local address of the node, some clusters run
// it on the node itself). A peer-restricted rule leaves every name
// unresolved there, the database's Service name included.
func dns() networkingv1.NetworkPolicyEgressRule {
	return networkingv1.NetworkPolicyEgressRule{Ports: []networkingv1.NetworkPolicyPort{
		{Protocol: ptr.To(corev1.ProtocolUDP), Port: ptr.To(intstr.FromInt32(53))}, tcp(53),
	}}
}

// internet is the application's way out of the cluster. Outside
// production it is HTTP(S) only: no SMTP reaches a real server even when a
// copy of production's database carries production's mail settings
// (Odoo's ir_mail_server, SuiteCRM's outbound_email), unless the project
// allows real mail there, and then only to the named server's port.
func internet(in *EnvironmentInput) networkingv1.NetworkPolicyEgressRule {
	rule := networkingv1.NetworkPolicyEgressRule{To: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "0.0.0.0/0", Except: privateRanges}}}}
	if in.Env.Spec.Stage == crmv1alpha1.StageProduction {
		return rule
	}
	rule.Ports = []networkingv1.NetworkPolicyPort{tcp(80), tcp(443)}
	if s := realSMTP(in); s != nil {
		port := s.Port
		if port == 0 {
			port = 587
		}
		rule.Ports = append(rule.Ports, tcp(port))
	}
	return rule
}

// backendPolicy: only the environment's application pods reach a backend
// (database or Redis); the backend itself reaches nothing.
func backendPolicy(in *EnvironmentInput, name, component string, port int32) *networkingv1.NetworkPolicy {
	np := policy(in, name, component, metav1.LabelSelector{MatchLabels: selector(in.Env.Name, component)})
	np.Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{{
		From:  []networkingv1.NetworkPolicyPeer{{PodSelector: appTier(in)}},
		Ports: []networkingv1.NetworkPolicyPort{tcp(port)},
	}}
	return np
}

// databasePolicy also admits the environment's agent Jobs (backup, restore).
func databasePolicy(in *EnvironmentInput, port int32) *networkingv1.NetworkPolicy {
	np := backendPolicy(in, DatabaseName(in.Env.Name), ComponentDatabase, port)
	np.Spec.Ingress[0].From = append(np.Spec.Ingress[0].From, networkingv1.NetworkPolicyPeer{
		PodSelector: &metav1.LabelSelector{MatchLabels: selector(in.Env.Name, ComponentAgent)},
	})
	return np
}

func redisPolicy(in *EnvironmentInput) *networkingv1.NetworkPolicy {
	return backendPolicy(in, RedisName(in.Env.Name), ComponentRedis, crm.Redis.Port)
}
