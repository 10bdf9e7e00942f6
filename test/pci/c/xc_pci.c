/*
 * Xen's libxenctrl calls of PCI passthrough, one per run, for
 * test/pci/xenctrl_pci.test.ts: prints "rc <rc> errno <errno>".
 *
 *   xc_pci assign|test|deassign <domid> <sbdf>
 *   xc_pci iomem <domid> <first_mfn> <nr> <allow>
 *   xc_pci map <domid> <gfn> <mfn> <nr> <add>
 *   xc_pci irq <domid> <pirq> <allow>
 *   xc_pci pirq <domid> <gsi>          xc_physdev_map_pirq, then prints "pirq <n>",
 *                                      and xc_physdev_unmap_pirq of it
 *   xc_pci msi <domid> <bus> <devfn> <gvec> <gflags>
 *                                      xc_physdev_map_pirq_msi (entry 0), prints "pirq <n>";
 *                                      xc_domain_update_msi_irq (its rc is the one printed last),
 *                                      prints "unbind <rc> errno <errno>" of
 *                                      xc_domain_unbind_msi_irq when bound; unmaps the pirq
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xenctrl.h>

int main(int argc, char **argv)
{
    if (argc < 4) { fprintf(stderr, "usage\n"); return 2; }
    xc_interface *xch = xc_interface_open(NULL, NULL, 0);
    if (!xch) { perror("xc_interface_open"); return 1; }
    uint32_t domid = strtoul(argv[2], NULL, 0);
    unsigned long a = strtoul(argv[3], NULL, 0);
    int rc;
    errno = 0;
    if (!strcmp(argv[1], "assign")) rc = xc_assign_device(xch, domid, a, 0);
    else if (!strcmp(argv[1], "test")) rc = xc_test_assign_device(xch, domid, a);
    else if (!strcmp(argv[1], "deassign")) rc = xc_deassign_device(xch, domid, a);
    else if (!strcmp(argv[1], "iomem") && argc == 6)
        rc = xc_domain_iomem_permission(xch, domid, a, strtoul(argv[4], NULL, 0), atoi(argv[5]));
    else if (!strcmp(argv[1], "map") && argc == 7)
        rc = xc_domain_memory_mapping(xch, domid, a, strtoul(argv[4], NULL, 0), strtoul(argv[5], NULL, 0), atoi(argv[6]));
    else if (!strcmp(argv[1], "irq") && argc == 5)
        rc = xc_domain_irq_permission(xch, domid, a, atoi(argv[4]));
    else if (!strcmp(argv[1], "pirq")) {
        int pirq = -1;
        rc = xc_physdev_map_pirq(xch, domid, a, &pirq);
        if (rc == 0) {
            printf("pirq %d\n", pirq);
            rc = xc_physdev_unmap_pirq(xch, domid, pirq);
        }
    }
    else if (!strcmp(argv[1], "msi") && argc == 7) {
        int pirq = -1;
        uint32_t gvec = strtoul(argv[5], NULL, 0), gflags = strtoul(argv[6], NULL, 0);
        rc = xc_physdev_map_pirq_msi(xch, domid, -1, &pirq, strtoul(argv[4], NULL, 0), a, 0, 0);
        if (rc == 0) {
            printf("pirq %d\n", pirq);
            rc = xc_domain_update_msi_irq(xch, domid, gvec, pirq, gflags, 0);
            int err = errno;
            if (rc == 0) {
                int u = xc_domain_unbind_msi_irq(xch, domid, gvec, pirq, gflags);
                printf("unbind %d errno %d\n", u, u < 0 ? errno : 0);
            }
            xc_physdev_unmap_pirq(xch, domid, pirq);
            errno = err;
        }
    }
    else { fprintf(stderr, "usage\n"); return 2; }
    printf("rc %d errno %d\n", rc, rc < 0 ? errno : 0);
    xc_interface_close(xch);
    return 0;
}
