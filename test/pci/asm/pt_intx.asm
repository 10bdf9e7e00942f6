; pt_intx: an HVM guest's check of a passed-through e1000's INTx
; (test/pci/hvm_pt_intx.test.ts), booted by SeaBIOS from an IDE disk. It
; finds the host's e1000 (8086:100e) on bus 0 where qemu-dm's xen_pt shows
; it, takes the BAR and interrupt line SeaBIOS gave it, and in flat 32-bit
; protected mode makes the device interrupt ROUNDS times through the
; Interrupt Cause Set register, each time halting until its handler ran.
; The handler reads ICR (which clears the cause and drops INTA#) and EOIs
; the 8259s. Results on COM1, `KEY value` lines:
;
;   SLOT dd / BAR0 xxxxxxxx / LINE ii / PIN pp / ELCR eeee   what SeaBIOS set
;   TAKEN n      interrupts whose ICR named a cause (handled)
;   SPURIOUS n   interrupts whose ICR was 0 (the line seen high after the
;                device dropped it)
;   LOST n       rounds with no interrupt within ~0.5 s (PIT ticks)
;   QUIET n      interrupts in ~0.5 s after the last round (should be 0)
;   RXLEN n      the looped-back frame's length in the RX descriptor
;   DMACODE n    what code the device's DMA overwrote returns (2: the new
;                bytes; 1: a stale translation of the old)
;   DONE
bits 16
org 0x7c00

STAGE2      equ 0x7e00
COM1        equ 0x3f8
ROUNDS      equ 200
E1000_ICR   equ 0xc0
E1000_ICS   equ 0xc8
E1000_IMS   equ 0xd0
E1000_IMC   equ 0xd8

boot:
    cli
    xor ax, ax
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov sp, 0x7c00
    mov [drive], dl
    mov si, dap_stage2
    mov ah, 0x42
    int 0x13
    jc .fail
    jmp stage2
.fail:
    mov dx, COM1
    mov al, '!'
    out dx, al
.halt:
    hlt
    jmp .halt

drive:        db 0
dap_stage2:   db 16, 0
              dw 8           ; sectors
              dw STAGE2, 0   ; offset, segment
              dq 1           ; LBA
    times 510 - ($ - $$) db 0
    dw 0xaa55

; ---------------------------------------------------------------- stage 2
stage2:
    cli
    in al, 0x92
    or al, 2
    out 0x92, al
    lgdt [gdt_desc]
    mov eax, cr0
    or eax, 1
    mov cr0, eax
    jmp 0x08:pm32

bits 32
pm32:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov esp, 0x7000
    ; IDT: every gate to `unexpected`, then the PIC vectors (SeaBIOS: master 0x08, slave 0x70).
    mov edi, idt
    mov ecx, 256
.gate:
    mov eax, unexpected
    call set_gate
    add edi, 8
    loop .gate
    mov edi, idt + 8 * 8
    mov eax, tick
    call set_gate
    lidt [idt_desc]

    ; Find the e1000 on bus 0.
    xor ebx, ebx
.scan:
    mov eax, ebx
    shl eax, 11
    or eax, 0x80000000
    mov [cfg_base], eax
    mov dx, 0xcf8
    out dx, eax
    mov dx, 0xcfc
    in eax, dx
    cmp eax, 0x100e8086
    je .found
    inc ebx
    cmp ebx, 32
    jb .scan
    mov esi, msg_none
    call puts
    jmp done
.found:
    mov esi, key_slot
    call puts
    mov eax, ebx
    call puthex8
    call newline
    mov al, 0x10
    call cfg_read
    and eax, 0xfffffff0
    mov [bar0], eax
    mov esi, key_bar
    call puts
    mov eax, [bar0]
    call puthex32
    call newline
    mov al, 0x3c
    call cfg_read
    mov [irqline], al
    mov [irqpin], ah
    mov esi, key_line
    call puts
    mov al, [irqline]
    call puthex8
    call newline
    mov esi, key_pin
    call puts
    mov al, [irqpin]
    call puthex8
    call newline
    mov esi, key_elcr
    call puts
    mov dx, 0x4d1
    in al, dx
    call puthex8
    mov dx, 0x4d0
    in al, dx
    call puthex8
    call newline
    ; Memory decoding and bus mastering on.
    mov al, 0x04
    call cfg_read
    or eax, 0x6
    mov ecx, eax
    mov al, 0x04
    call cfg_write

    ; The device's line: its handler's gate, the PIC masks (the cascade, PIT and it).
    movzx ecx, byte [irqline]
    cmp ecx, 16
    jae badline
    mov eax, ecx
    add eax, 0x08
    cmp ecx, 8
    jb .master
    add eax, 0x70 - 0x10
.master:
    lea edi, [idt + eax * 8]
    mov eax, dev_irq
    call set_gate
    mov ebx, 0xfffa             ; IRQ0 (PIT) and IRQ2 (cascade) open
    btr ebx, ecx
    mov al, bl
    out 0x21, al
    mov al, bh
    out 0xa1, al

    ; The device quiet, then IMS = TXDW.
    mov esi, [bar0]
    mov dword [esi + E1000_IMC], 0xffffffff
    mov eax, [esi + E1000_ICR]
    mov dword [esi + E1000_IMS], 1

    mov ebp, ROUNDS
.round:
    mov eax, [taken]
    mov [before], eax
    mov eax, [ticks]
    mov [tick0], eax
    mov esi, [bar0]
    mov dword [esi + E1000_ICS], 1
.wait:
    sti
    hlt
    cli
    mov eax, [taken]
    cmp eax, [before]
    jne .next
    mov eax, [ticks]
    sub eax, [tick0]
    cmp eax, 10
    jb .wait
    inc dword [lost]
.next:
    dec ebp
    jnz .round

    ; Quiet: no cause set; count whatever still comes in ~0.5 s.
    mov eax, [taken]
    add eax, [spurious]
    mov [before], eax
    mov eax, [ticks]
    mov [tick0], eax
.quiet:
    sti
    hlt
    cli
    mov eax, [ticks]
    sub eax, [tick0]
    cmp eax, 10
    jb .quiet
    mov eax, [taken]
    add eax, [spurious]
    sub eax, [before]
    mov [quiet], eax

    call dma_code

    mov esi, key_taken
    call puts
    mov eax, [taken]
    call puthex32
    call newline
    mov esi, key_spurious
    call puts
    mov eax, [spurious]
    call puthex32
    call newline
    mov esi, key_lost
    call puts
    mov eax, [lost]
    call puthex32
    call newline
    mov esi, key_quiet
    call puts
    mov eax, [quiet]
    call puthex32
    call newline
done:
    mov esi, msg_done
    call puts
.halt:
    cli
    hlt
    jmp .halt
badline:
    mov esi, msg_badline
    call puts
    jmp done

; dma_code: code the processor ran (hot enough for v86's JIT to have
; translated it) is overwritten by the device's DMA (a frame the e1000 sends
; to itself, MAC loopback, received over it); calling it again must run the
; new bytes: the vCPU forgets translations of frames the device wrote.
RXBUF   equ 0x30000
FN      equ RXBUF + 14          ; the payload, after the Ethernet header
TXRING  equ 0x20000
RXRING  equ 0x21000
TXFRAME equ 0x22000
dma_code:
    mov dword [FN], 0x000001b8  ; mov eax, 1
    mov word [FN + 4], 0xc300   ; (imm high byte 0), ret
    ; Hot, and long enough for v86's JIT (which compiles asynchronously,
    ; between the vCPU's turns) to install its translation: 20 PIT ticks.
    mov ebx, 20
.hotter:
    mov ecx, 100000
.hot:
    call FN
    loop .hot
    sti
    hlt
    cli
    dec ebx
    jnz .hotter
    mov esi, [bar0]
    mov dword [esi + E1000_IMC], 0xffffffff
    ; The frame: broadcast, ethertype 0x88b5, payload mov eax, 2; ret.
    mov edi, TXFRAME
    mov ecx, 60
    xor al, al
    rep stosb
    mov dword [TXFRAME], 0xffffffff
    mov word [TXFRAME + 4], 0xffff
    mov word [TXFRAME + 12], 0xb588
    mov dword [TXFRAME + 14], 0x000002b8
    mov word [TXFRAME + 18], 0xc300
    ; Rings of 8 descriptors (128 bytes), all clear; one RX buffer, one TX frame.
    mov edi, TXRING
    mov ecx, 0x1100 / 4
    xor eax, eax
    rep stosd
    mov dword [RXRING], RXBUF
    mov dword [TXRING], TXFRAME
    mov word [TXRING + 8], 60
    mov byte [TXRING + 11], 0x0b ; EOP | IFCS | RS
    mov dword [esi + 0x2800], RXRING  ; RDBAL
    mov dword [esi + 0x2804], 0
    mov dword [esi + 0x2808], 128     ; RDLEN
    mov dword [esi + 0x2810], 0       ; RDH
    mov dword [esi + 0x2818], 1       ; RDT: one buffer
    mov dword [esi + 0x0100], 0x8042  ; RCTL: EN, LBM_MAC, BAM
    mov dword [esi + 0x3800], TXRING  ; TDBAL
    mov dword [esi + 0x3804], 0
    mov dword [esi + 0x3808], 128     ; TDLEN
    mov dword [esi + 0x3810], 0       ; TDH
    mov dword [esi + 0x3818], 0       ; TDT
    mov dword [esi + 0x0400], 0x0a    ; TCTL: EN, PSP
    mov dword [esi + 0x3818], 1       ; TDT: send it
    mov eax, [ticks]
    mov [tick0], eax
.rx:
    test byte [RXRING + 12], 1        ; DD
    jnz .got
    sti
    hlt
    cli
    mov eax, [ticks]
    sub eax, [tick0]
    cmp eax, 20
    jb .rx
    mov esi, msg_norx
    call puts
    ret
.got:
    mov esi, key_rxlen
    call puts
    movzx eax, word [RXRING + 8]
    call puthex32
    call newline
    call FN
    mov esi, key_dmacode
    call puts
    call puthex32
    call newline
    ret

; The device's interrupt: ICR read-to-clear, EOI to the slave (if its line is there) and the master.
dev_irq:
    push eax
    push esi
    mov esi, [bar0]
    mov eax, [esi + E1000_ICR]
    test eax, eax
    jz .spur
    inc dword [taken]
    jmp .eoi
.spur:
    inc dword [spurious]
.eoi:
    mov al, 0x20
    cmp byte [irqline], 8
    jb .m
    out 0xa0, al
.m:
    out 0x20, al
    pop esi
    pop eax
    iret

tick:
    push eax
    inc dword [ticks]
    mov al, 0x20
    out 0x20, al
    pop eax
    iret

unexpected:
    mov esi, msg_unexpected
    call puts
    jmp done.halt

; set_gate: EDI the gate, EAX the handler (a 32-bit interrupt gate in segment 0x08).
set_gate:
    mov [edi], ax
    mov word [edi + 2], 0x08
    mov word [edi + 4], 0x8e00
    shr eax, 16
    mov [edi + 6], ax
    ret

; cfg_read: AL the register, [cfg_base] the function; EAX the dword.
cfg_read:
    push edx
    movzx eax, al
    or eax, [cfg_base]
    mov dx, 0xcf8
    out dx, eax
    mov dx, 0xcfc
    in eax, dx
    pop edx
    ret

; cfg_write: AL the register, ECX the dword.
cfg_write:
    push edx
    movzx eax, al
    or eax, [cfg_base]
    mov dx, 0xcf8
    out dx, eax
    mov dx, 0xcfc
    mov eax, ecx
    out dx, eax
    pop edx
    ret

; puts: ESI a NUL-terminated string to COM1.
puts:
    push eax
    push edx
.next:
    lodsb
    test al, al
    jz .done
    mov ah, al
    mov dx, COM1 + 5
.wait:
    in al, dx
    test al, 0x20
    jz .wait
    mov dx, COM1
    mov al, ah
    out dx, al
    jmp .next
.done:
    pop edx
    pop eax
    ret

putc:                           ; AL
    push edx
    push eax
    mov dx, COM1 + 5
.wait:
    in al, dx
    test al, 0x20
    jz .wait
    pop eax
    mov dx, COM1
    out dx, al
    pop edx
    ret

hexdigit:                       ; AL 0-15
    and al, 0x0f
    add al, '0'
    cmp al, '9'
    jbe .ok
    add al, 'a' - '9' - 1
.ok:
    jmp putc

puthex8:
    push eax
    push eax
    shr al, 4
    call hexdigit
    pop eax
    call hexdigit
    pop eax
    ret

puthex32:
    push ecx
    mov ecx, 8
.d:
    rol eax, 4
    push eax
    call hexdigit
    pop eax
    loop .d
    pop ecx
    ret

newline:
    push eax
    mov al, 13
    call putc
    mov al, 10
    call putc
    pop eax
    ret

key_slot:       db "SLOT ", 0
key_bar:        db "BAR0 ", 0
key_line:       db "LINE ", 0
key_pin:        db "PIN ", 0
key_elcr:       db "ELCR ", 0
key_taken:      db "TAKEN ", 0
key_spurious:   db "SPURIOUS ", 0
key_lost:       db "LOST ", 0
key_quiet:      db "QUIET ", 0
key_rxlen:      db "RXLEN ", 0
key_dmacode:    db "DMACODE ", 0
msg_norx:       db "NO RX", 13, 10, 0
msg_none:       db "NO E1000", 13, 10, 0
msg_badline:    db "BAD LINE", 13, 10, 0
msg_unexpected: db "UNEXPECTED VECTOR", 13, 10, 0
msg_done:       db "DONE", 13, 10, 0

align 8
gdt:
    dq 0
    dq 0x00cf9a000000ffff       ; 0x08 code, flat 4 GiB, 32-bit
    dq 0x00cf92000000ffff       ; 0x10 data, flat 4 GiB
gdt_desc:
    dw gdt_desc - gdt - 1
    dd gdt
idt_desc:
    dw 256 * 8 - 1
    dd idt
cfg_base:   dd 0
bar0:       dd 0
irqline:    db 0
irqpin:     db 0
align 4
taken:      dd 0
spurious:   dd 0
lost:       dd 0
quiet:      dd 0
ticks:      dd 0
tick0:      dd 0
before:     dd 0
    times 512 * 9 - ($ - $$) db 0
idt         equ 0x1000
