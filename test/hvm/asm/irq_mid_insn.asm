; A 64 KiB "BIOS" for test/hvm/irq_boundary.test.ts: from the reset vector,
; in real mode, it programs the master 8259 (vectors 0x20-0x27, only IRQ 5
; unmasked), then reads a word of MMIO at 0xA0000 two million times in a
; hot loop (translated by v86's JIT after the first iterations), adding up
; what it read. The test's MMIO handler raises IRQ 5 from inside some of
; those reads, in the middle of the `mov`; the handler acknowledges the
; device with an MMIO write and the 8259 with an EOI. At the end it stores:
;   0x600  dword  interrupts taken
;   0x604  dword  sum of the words read (each read gives 1)
;   0x608  dword  iterations (ESI)
;   0x60c  dword  EDI, 3 per iteration
;   0x610  word   SP (0x7000 when every interrupt frame was popped)
;   0x612  byte   1: done
bits 16
org 0
start:
    cli
    xor ax, ax
    mov ds, ax
    mov ss, ax
    mov sp, 0x7000
    mov word [0x25*4], handler
    mov word [0x25*4+2], 0xf000
    mov al, 0x11            ; ICW1: edge, cascade, ICW4
    out 0x20, al
    mov al, 0x20            ; ICW2: vectors 0x20-0x27
    out 0x21, al
    mov al, 0x04            ; ICW3: the slave on IR2
    out 0x21, al
    mov al, 0x01            ; ICW4: 8086 mode
    out 0x21, al
    mov al, 0xdf            ; OCW1: IRQ 5 only
    out 0x21, al
    mov ax, 0xa000
    mov es, ax
    xor ebx, ebx
    xor esi, esi
    xor edi, edi
    mov dword [0x600], 0
    mov ecx, 2000000
    sti
.loop:
    movzx eax, word [es:0]
    add ebx, eax
    add edi, 3
    inc esi
    dec ecx
    jnz .loop
    cli
    mov [0x604], ebx
    mov [0x608], esi
    mov [0x60c], edi
    mov [0x610], sp
    mov byte [0x612], 1
.idle:
    hlt
    jmp .idle
handler:
    push ax
    mov word [es:4], ax     ; the device lowers its line
    inc dword [0x600]
    mov al, 0x20            ; EOI
    out 0x20, al
    pop ax
    iret
    times 0xfff0 - ($ - $$) db 0
reset:
    jmp 0xf000:start
    times 0x10000 - ($ - $$) db 0
